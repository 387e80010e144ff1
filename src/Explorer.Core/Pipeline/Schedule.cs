namespace Explorer.Core.Pipeline;

/// <summary>Pipeline schedules, as torch.distributed.pipelining and Megatron-LM name them.</summary>
public enum ScheduleKind
{
    /// <summary>All forwards, then all backwards (ScheduleGPipe).</summary>
    GPipe,
    /// <summary>One forward, one backward after a warm-up of p − i − 1 forwards (Schedule1F1B).</summary>
    OneFOneB,
    /// <summary>Megatron-LM's interleaved 1F1B with v model chunks per device (ScheduleInterleaved1F1B).</summary>
    Interleaved1F1B,
    /// <summary>Zero Bubble H1: the backward split into input (B) and weight (W) gradients, W filling the bubbles,
    /// with 1F1B's activation memory (arXiv 2401.10241).</summary>
    ZeroBubbleH1,
}

public static class ScheduleNames
{
    public static IReadOnlyDictionary<string, ScheduleKind> ByName { get; } = new Dictionary<string, ScheduleKind>(StringComparer.OrdinalIgnoreCase)
    {
        ["gpipe"] = ScheduleKind.GPipe,
        ["1f1b"] = ScheduleKind.OneFOneB,
        ["interleaved"] = ScheduleKind.Interleaved1F1B,
        ["interleaved-1f1b"] = ScheduleKind.Interleaved1F1B,
        ["zb-h1"] = ScheduleKind.ZeroBubbleH1,
        ["zbh1"] = ScheduleKind.ZeroBubbleH1,
    };

    public static string Name(ScheduleKind kind) => kind switch
    {
        ScheduleKind.GPipe => "gpipe",
        ScheduleKind.OneFOneB => "1f1b",
        ScheduleKind.Interleaved1F1B => "interleaved",
        _ => "zb-h1",
    };

    public static ScheduleKind Parse(string name) =>
        ByName.TryGetValue(name?.Trim() ?? "", out var kind)
            ? kind
            : throw new ArgumentException($"Unknown schedule '{name}'. Use one of: gpipe, 1f1b, interleaved, zb-h1.");

    /// <summary>Micro-batches whose activations device <paramref name="stage"/> holds at most, in units of its stage's activations.</summary>
    public static double InFlight(ScheduleKind kind, int stage, int stages, int microBatches, int virtualStages = 1) => kind switch
    {
        ScheduleKind.GPipe => microBatches,
        ScheduleKind.Interleaved1F1B => Math.Min((double)microBatches * virtualStages,
            (stages - stage - 1) * 2 + (virtualStages - 1) * stages + 1) / virtualStages,
        _ => Math.Min(stages - stage, microBatches),
    };
}

/// <summary>A per-device memory budget for memory-capped partitioning: model state plus in-flight activations.</summary>
public sealed record StageMemory(long BudgetBytes, double StateBytesPerParameter, ScheduleKind Schedule, int MicroBatches, int VirtualStages = 1)
{
    public long Bytes(IReadOnlyList<PipelineUnit> units, int from, int to, int stage, int stages)
    {
        double parameters = 0, activations = 0;
        for (var u = from; u < to; u++)
        {
            parameters += units[u].Parameters;
            activations += units[u].ActivationBytes;
        }
        return (long)Math.Ceiling(parameters * StateBytesPerParameter + ScheduleNames.InFlight(Schedule, stage, stages, MicroBatches, VirtualStages) * activations);
    }

    public bool Fits(IReadOnlyList<PipelineUnit> units, int from, int to, int stage, int stages) =>
        Bytes(units, from, to, stage, stages) <= BudgetBytes;

    /// <summary>Why no split fits: the unit that alone overflows a device, or the total.</summary>
    public string Explain(IReadOnlyList<PipelineUnit> units, int stages)
    {
        for (var u = 0; u < units.Count; u++)
        {
            var alone = Enumerable.Range(0, stages).Min(k => Bytes(units, u, u + 1, k, stages));
            if (alone > BudgetBytes)
                return $"Unit {u} ({units[u].Name}) alone needs {Formatting.Units.Bytes(alone)} on any device, over the {Formatting.Units.Bytes(BudgetBytes)} budget: no split fits. Use more memory, recomputation, or a smaller micro-batch.";
        }
        return $"No split of {units.Count} units into {stages} stages fits {Formatting.Units.Bytes(BudgetBytes)} per device with {ScheduleNames.Name(Schedule)} and {MicroBatches} micro-batches: add stages or memory.";
    }
}
