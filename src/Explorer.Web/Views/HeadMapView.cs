using System.Text.Json;
using Explorer.Model.Decoder;

namespace Explorer.Web.Views;

/// <summary>
/// One head's attention map as a view sends it: exact up to <see cref="MaxCells"/> rows and columns, beyond that
/// averaged over blocks of tokens (and said so); weights rounded to 3 decimals. The only map copied out of a trace.
/// </summary>
public sealed record HeadMapView(
    int Layer,
    int Head,
    int KvGroup,
    IReadOnlyList<string> QueryLabels,
    IReadOnlyList<string> KeyLabels,
    double[][] Weights,
    int BlockSize,
    string? Note
)
{
    /// <summary>Largest side sent: 80 × 80 values stay under 64 KB as JSON.</summary>
    public const int MaxCells = 80;

    /// <summary>Bytes the weights take as JSON: what the chart sends to the browser.</summary>
    public int PayloadBytes => JsonSerializer.SerializeToUtf8Bytes(Weights).Length;

    /// <param name="queries">Query positions to show (null: all).</param>
    public static HeadMapView From(
        DecoderTrace trace,
        int layer,
        int head,
        IReadOnlyList<string> pieces,
        IReadOnlyList<int>? queries = null
    )
    {
        var map = trace.HeadMap(layer, head); // T × T, the one copy
        int t = trace.Length;
        var rows = (queries ?? Enumerable.Range(0, t).ToArray())
            .Where(q => q >= 0 && q < t)
            .Distinct()
            .Order()
            .ToArray();
        var keyCount = queries is null ? t : rows.Max() + 1; // keys after the last query shown carry no weight
        var block = BlockMeans.BlockFor(Math.Max(keyCount, rows.Length), MaxCells);
        var keyBlocks = (keyCount + block - 1) / block;
        var rowGroups = rows.Chunk(block).ToArray();
        var weights = BlockMeans
            .Of(rowGroups, keyCount, block, (q, key) => map[q * t + key])
            .Select(row => row.Select(w => Math.Round(w, 3)).ToArray())
            .ToArray();
        string Label(IReadOnlyList<int> positions) =>
            positions.Count == 1 ? $"{positions[0]}: {pieces[positions[0]]}" : $"{positions[0]}–{positions[^1]}";
        var queryLabels = rowGroups.Select(g => Label(g)).ToArray();
        var keyLabels = Enumerable
            .Range(0, keyBlocks)
            .Select(k => Label(Enumerable.Range(k * block, Math.Min(block, keyCount - k * block)).ToArray()))
            .ToArray();
        var note =
            block > 1 ? $"{t} tokens shown as blocks of {block}: each cell is the mean weight of its block." : null;
        return new HeadMapView(layer, head, trace.KvGroup(head), queryLabels, keyLabels, weights, block, note);
    }

    /// <summary>A small map for the head grid: at most <paramref name="side"/> × <paramref name="side"/> block
    /// means.</summary>
    public static double[][] Thumbnail(DecoderTrace trace, int layer, int head, int side = 16)
    {
        var map = trace.HeadMap(layer, head);
        int t = trace.Length,
            block = BlockMeans.BlockFor(t, side);
        // Blocks above the diagonal hold only masked (zero) weights: their mean is 0.
        return BlockMeans.Of(BlockMeans.Groups(t, block), t, block, (q, k) => k <= q ? map[q * t + k] : 0);
    }
}
