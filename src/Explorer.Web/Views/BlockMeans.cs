namespace Explorer.Web.Views;

/// <summary>
/// Means over blocks of a matrix: how a chart shows more tokens than it has cells for (each cell the mean of its
/// block, said so in the chart's note). The one implementation for token × layer heatmaps and attention maps.
/// </summary>
public static class BlockMeans
{
    /// <summary>Consecutive index groups of <paramref name="block"/> covering 0…count−1 (the last may be
    /// shorter).</summary>
    public static int[][] Groups(int count, int block) =>
        Enumerable.Range(0, count).Chunk(Math.Max(1, block)).ToArray();

    /// <summary>The smallest block that fits <paramref name="count"/> items into <paramref name="cells"/>
    /// cells.</summary>
    public static int BlockFor(int count, int cells) => Math.Max(1, (count + cells - 1) / Math.Max(1, cells));

    /// <summary>
    /// result[r][k] = mean of <paramref name="value"/>(row, column) over the rows of <paramref name="rowGroups"/>[r]
    /// and the columns of block k (columns k·block … min(columns, (k + 1)·block) − 1).
    /// </summary>
    public static double[][] Of(IReadOnlyList<int[]> rowGroups, int columns, int block, Func<int, int, double> value)
    {
        block = Math.Max(1, block);
        var blocks = (columns + block - 1) / block;
        var result = new double[rowGroups.Count][];
        for (var r = 0; r < rowGroups.Count; r++)
        {
            result[r] = new double[blocks];
            for (var k = 0; k < blocks; k++)
            {
                double sum = 0;
                var count = 0;
                foreach (var row in rowGroups[r])
                    for (var c = k * block; c < Math.Min(columns, (k + 1) * block); c++)
                    {
                        sum += value(row, c);
                        count++;
                    }
                result[r][k] = count == 0 ? 0 : sum / count;
            }
        }
        return result;
    }
}
