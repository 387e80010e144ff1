namespace Explorer.Core.Pipeline;

/// <summary>
/// The contiguous split that minimises the largest stage weight exactly: stage weight = the sum of a per-unit
/// weight (time for <see cref="Optimal"/>, parameters for DeepSpeed's 'parameters' method), with every stage
/// non-empty. Dynamic programming over (stages, prefix) in O(p·n): for a fixed end, the best start is where the
/// non-decreasing cost of the earlier stages crosses the non-increasing weight of the last one, and that crossing
/// only moves right as the end does. An optional
/// memory budget per stage restricts which segments a stage may hold.
/// </summary>
public sealed class BalancedPartitioner : IPartitioner
{
    private readonly Func<PipelineUnit, double> _weight;
    private readonly StageMemory? _memory;

    private BalancedPartitioner(string name, Func<PipelineUnit, double> weight, StageMemory? memory)
    {
        Name = name;
        _weight = weight;
        _memory = memory;
    }

    public string Name { get; }

    /// <summary>Minimises the slowest stage's time (F + B + W), optionally within a memory budget per device.</summary>
    public static BalancedPartitioner Optimal(StageMemory? memory = null) => new("optimal", u => u.Time, memory);

    /// <summary>DeepSpeed's <c>partition_method='parameters'</c>: balances trainable parameters per stage.</summary>
    public static BalancedPartitioner Parameters() => new("parameters", u => u.Parameters, null);

    public PartitionResult Partition(IReadOnlyList<PipelineUnit> units, int stages)
    {
        if (PartitionChecks.Check(units, stages) is { } problem)
            return PartitionResult.Refuse(problem);
        int n = units.Count;
        var prefix = new double[n + 1];
        for (var i = 0; i < n; i++)
        {
            var w = _weight(units[i]);
            if (!(w >= 0) || double.IsInfinity(w))
                return PartitionResult.Refuse(
                    $"Unit {i} ({units[i].Name}) has weight {w}; weights must be finite and not negative."
                );
            prefix[i + 1] = prefix[i] + w;
        }
        double Segment(int from, int to) => prefix[to] - prefix[from]; // units [from, to)

        // best[k][i]: the smallest possible largest weight splitting units [0, i) into k + 1 stages; cut[k][i] where
        // the last starts.
        var best = new double[stages][];
        var cut = new int[stages][];
        for (var k = 0; k < stages; k++)
        {
            best[k] = new double[n + 1];
            cut[k] = new int[n + 1];
            Array.Fill(best[k], double.PositiveInfinity);
        }
        for (var i = 1; i <= n; i++)
            if (_memory is null || _memory.Fits(units, 0, i, 0, stages))
                best[0][i] = Segment(0, i);
        for (var k = 1; k < stages; k++)
        {
            var crossing = k;
            for (var i = k + 1; i <= n; i++)
            {
                // The last stage is [j, i), j in [k, i − 1].
                if (_memory is null)
                {
                    // The first j where the earlier stages' cost reaches the last stage's weight only moves right
                    // as i grows: one pointer per k makes the whole row O(n).
                    if (crossing < k)
                        crossing = k;
                    while (crossing < i - 1 && best[k - 1][crossing] < Segment(crossing, i))
                        crossing++;
                    for (var j = Math.Max(k, crossing - 1); j <= crossing && j <= i - 1; j++)
                    {
                        var cost = Math.Max(best[k - 1][j], Segment(j, i));
                        if (cost < best[k][i])
                        {
                            best[k][i] = cost;
                            cut[k][i] = j;
                        }
                    }
                }
                else
                {
                    for (var j = i - 1; j >= k; j--)
                    {
                        if (!_memory.Fits(units, j, i, k, stages))
                            break; // a longer last stage only needs more memory
                        var cost = Math.Max(best[k - 1][j], Segment(j, i));
                        if (cost < best[k][i])
                        {
                            best[k][i] = cost;
                            cut[k][i] = j;
                        }
                    }
                }
            }
        }
        if (double.IsPositiveInfinity(best[stages - 1][n]))
            return PartitionResult.Refuse(_memory?.Explain(units, stages) ?? "No split exists.");
        var firstUnits = new int[stages];
        for (int k = stages - 1, i = n; k >= 0; k--)
        {
            var j = k == 0 ? 0 : cut[k][i];
            firstUnits[k] = j;
            i = j;
        }
        return PartitionResult.Of(new StagePlan(units, firstUnits, Name));
    }
}

/// <summary>Manual boundaries: the first unit of each stage after the first.</summary>
public sealed record ManualPartitioner(IReadOnlyList<int> Boundaries) : IPartitioner
{
    public string Name => "manual";

    public PartitionResult Partition(IReadOnlyList<PipelineUnit> units, int stages)
    {
        if (PartitionChecks.Check(units, stages) is { } problem)
            return PartitionResult.Refuse(problem);
        if (Boundaries.Count != stages - 1)
            return PartitionResult.Refuse(
                $"{stages} stages need {stages - 1} boundaries; {Boundaries.Count} were given."
            );
        try
        {
            return PartitionResult.Of(new StagePlan(units, [0, .. Boundaries], Name));
        }
        catch (ArgumentException e)
        {
            return PartitionResult.Refuse(e.Message);
        }
    }
}
