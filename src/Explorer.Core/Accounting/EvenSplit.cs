namespace Explorer.Core.Accounting;

/// <summary>
/// The divisibility view of a stack: decoder layers per pipeline stage when <see cref="Layers"/> layers are dealt
/// as evenly as possible to <see cref="Stages"/> stages, by count alone. The split a plan uses, costed, is
/// <see cref="Pipeline.StageSplit"/>.
/// </summary>
public sealed record EvenSplit(int Layers, int Stages)
{
    public int Fewest => Layers / Stages;
    public int Most => (Layers + Stages - 1) / Stages;
    public bool IsEven => Layers % Stages == 0;

    /// <summary>Slowest stage over the mean stage: the time lost to an uneven split.</summary>
    public double Imbalance => Most * (double)Stages / Layers;

    /// <summary>Pipeline sizes the tables show.</summary>
    public static IReadOnlyList<int> CommonStageCounts { get; } = [2, 4, 8, 16];

    public override string ToString() =>
        Fewest == 0 ? "empty stages"
        : IsEven ? $"{Fewest}"
        : $"{Fewest}–{Most}";
}
