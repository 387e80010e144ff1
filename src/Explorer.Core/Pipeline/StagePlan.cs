namespace Explorer.Core.Pipeline;

/// <summary>One pipeline stage: units [FirstUnit, LastUnit], inclusive, 0-based.</summary>
public sealed record Stage(
    int Index,
    int FirstUnit,
    int LastUnit,
    double Forward,
    double InputGradient,
    double WeightGradient,
    long Parameters,
    long ActivationBytes
)
{
    public int UnitCount => LastUnit - FirstUnit + 1;
    public double Time => Forward + InputGradient + WeightGradient;
}

/// <summary>A split of units into contiguous, non-empty stages, and what each stage costs.</summary>
public sealed class StagePlan
{
    public StagePlan(IReadOnlyList<PipelineUnit> units, IReadOnlyList<int> firstUnits, string method)
    {
        Validate(units.Count, firstUnits);
        Units = units;
        Method = method;
        var stages = new Stage[firstUnits.Count];
        for (var i = 0; i < firstUnits.Count; i++)
        {
            int first = firstUnits[i],
                last = i + 1 < firstUnits.Count ? firstUnits[i + 1] - 1 : units.Count - 1;
            double f = 0,
                b = 0,
                w = 0;
            long parameters = 0,
                activations = 0;
            for (var u = first; u <= last; u++)
            {
                f += units[u].Forward;
                b += units[u].InputGradient;
                w += units[u].WeightGradient;
                parameters += units[u].Parameters;
                activations += units[u].ActivationBytes;
            }
            stages[i] = new Stage(i, first, last, f, b, w, parameters, activations);
        }
        Stages = stages;
    }

    public IReadOnlyList<PipelineUnit> Units { get; }
    public IReadOnlyList<Stage> Stages { get; }
    public string Method { get; }

    public double MaxStageTime => Stages.Max(s => s.Time);
    public double MeanStageTime => Stages.Average(s => s.Time);

    /// <summary>Slowest stage over the mean: 1 is perfectly balanced.</summary>
    public double Imbalance => MeanStageTime == 0 ? 1 : MaxStageTime / MeanStageTime;

    /// <summary>First unit of every stage after the first: where the cuts are.</summary>
    public IReadOnlyList<int> Boundaries => Stages.Skip(1).Select(s => s.FirstUnit).ToArray();

    public static void Validate(int units, IReadOnlyList<int> firstUnits)
    {
        if (firstUnits.Count < 1)
            throw new ArgumentException("A plan needs at least one stage.");
        if (firstUnits.Count > units)
            throw new ArgumentException(
                $"{firstUnits.Count} stages cannot each get a unit of {units}: use at most {units} stages."
            );
        if (firstUnits[0] != 0)
            throw new ArgumentException($"The first stage must start at unit 0, not {firstUnits[0]}.");
        for (var i = 1; i < firstUnits.Count; i++)
        {
            if (firstUnits[i] <= firstUnits[i - 1])
                throw new ArgumentException(
                    $"Stage {i} starts at unit {firstUnits[i]}, not after stage {i - 1}'s start "
                        + $"{firstUnits[i - 1]}: every stage needs at least one unit."
                );
            if (firstUnits[i] >= units)
                throw new ArgumentException(
                    $"Stage {i} starts at unit {firstUnits[i]}, beyond the last unit {units - 1}."
                );
        }
    }
}
