namespace Explorer.Core.Parallel;

/// <summary>
/// A ranked search read as trade-offs rather than a league table: the configurations no other beats on both step time
/// and memory per GPU (the Pareto front), and those whose predicted step time is within the estimator's error of the
/// fastest, which the estimate cannot tell apart (a tie).
/// </summary>
public static class Tradeoffs
{
    /// <summary>
    /// The estimator's mean relative step-time error on published runs it was not fitted on: Korthikanti et al. 2022
    /// Table 5 (eight runs of 22B to 1T on A100s) and Megatron-Core's H100 weak-scaling table (nine runs of 1.7B to
    /// 462B); EstimatorValidationTests measures it and holds this figure to it. Configurations closer than this to the
    /// fastest are a tie.
    /// </summary>
    public const double EstimatorError = 0.046;

    /// <summary>
    /// Indices (ascending) of the points on the Pareto front of (seconds, bytes), both smaller-is-better: a point is on
    /// it when no other point is at most as slow and at most as large while strictly better in one of the two. Equal
    /// points do not dominate each other. O(n log n).
    /// </summary>
    public static IReadOnlyList<int> ParetoFront(IReadOnlyList<(double Seconds, double Bytes)> points)
    {
        var order = Enumerable
            .Range(0, points.Count)
            .OrderBy(i => points[i].Seconds)
            .ThenBy(i => points[i].Bytes)
            .ToArray();
        var front = new List<int>();
        var smallestFaster = double.PositiveInfinity; // least bytes among points strictly faster than the group at hand
        for (var start = 0; start < order.Length; )
        {
            var end = start;
            while (end < order.Length && points[order[end]].Seconds == points[order[start]].Seconds)
                end++;
            var groupSmallest = points[order[start]].Bytes; // sorted by bytes within a group
            for (var k = start; k < end; k++)
            {
                var bytes = points[order[k]].Bytes;
                if (bytes < smallestFaster && bytes <= groupSmallest)
                    front.Add(order[k]);
            }
            smallestFaster = Math.Min(smallestFaster, groupSmallest);
            start = end;
        }
        front.Sort();
        return front;
    }

    /// <summary>
    /// How many of <paramref name="seconds"/> (fastest first) are tied with the fastest: predicted within
    /// <paramref name="relativeError"/> of it (0.05: up to 5% slower), so the estimate cannot rank them.
    /// </summary>
    public static int TiedWithFastest(IReadOnlyList<double> seconds, double relativeError)
    {
        if (relativeError < 0 || !double.IsFinite(relativeError))
            throw new ArgumentOutOfRangeException(
                nameof(relativeError),
                relativeError,
                "The estimator's error is a finite fraction of at least 0."
            );
        if (seconds.Count == 0)
            return 0;
        var limit = seconds[0] * (1 + relativeError);
        var tied = 0;
        while (tied < seconds.Count && seconds[tied] <= limit)
            tied++;
        return tied;
    }
}
