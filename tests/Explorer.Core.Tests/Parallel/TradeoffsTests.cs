using Explorer.Core.Parallel;

namespace Explorer.Core.Tests.Parallel;

public class TradeoffsTests
{
    /// <summary>The front by its definition, pair by pair.</summary>
    private static int[] BruteForce(IReadOnlyList<(double Seconds, double Bytes)> p) =>
        Enumerable
            .Range(0, p.Count)
            .Where(i =>
                !Enumerable
                    .Range(0, p.Count)
                    .Any(j =>
                        p[j].Seconds <= p[i].Seconds
                        && p[j].Bytes <= p[i].Bytes
                        && (p[j].Seconds < p[i].Seconds || p[j].Bytes < p[i].Bytes)
                    )
            )
            .ToArray();

    [Fact]
    public void TheFrontIsEveryPointNoOtherDominates()
    {
        var random = new Random(5);
        for (var trial = 0; trial < 200; trial++)
        {
            // Coarse values so that equal times, equal memory and equal points all occur.
            var points = Enumerable
                .Range(0, random.Next(0, 40))
                .Select(_ => ((double)random.Next(0, 8), (double)random.Next(0, 8)))
                .ToArray();
            Assert.Equal(BruteForce(points), Tradeoffs.ParetoFront(points));
        }
    }

    [Fact]
    public void AHandMadeFront()
    {
        // (1, 9) fastest; (2, 5) and (4, 1) trade time for memory; (3, 6) is beaten by (2, 5); the copy of (4, 1)
        // stays.
        (double, double)[] points = [(3, 6), (1, 9), (4, 1), (2, 5), (4, 1), (5, 5)];
        Assert.Equal([1, 2, 3, 4], Tradeoffs.ParetoFront(points));
    }

    [Fact]
    public void TiesAreTheConfigurationsWithinTheErrorOfTheFastest()
    {
        double[] seconds = [10.0, 10.2, 10.5, 10.51, 12];
        Assert.Equal(4, Tradeoffs.TiedWithFastest(seconds, 0.051)); // up to 10.51
        Assert.Equal(3, Tradeoffs.TiedWithFastest(seconds, 0.05)); // up to 10.5
        Assert.Equal(1, Tradeoffs.TiedWithFastest(seconds, 0));
        Assert.Equal(0, Tradeoffs.TiedWithFastest([], 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tradeoffs.TiedWithFastest(seconds, -0.1));
    }
}
