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

    /// <summary>torch.distributed.pipelining's ScheduleInterleavedZeroBubble: interleaved 1F1B with the backward split
    /// into B and W, device i deferring the W's of all but its first i backwards to fill the bubble (ZB1P, v
    /// chunks).</summary>
    InterleavedZeroBubble,

    /// <summary>Zero Bubble V (ScheduleZBVZeroBubble, arXiv 2401.10241 §6): two chunks per device in a V, stage r and
    /// 2p − 1 − r on device r; no bubble when F = B = W, with 1F1B's activation memory.</summary>
    ZeroBubbleV,

    /// <summary>DualPipeV (DeepSeek's "cut-in-half" DualPipe; ScheduleDualPipeV): the V placement, one micro-batch's
    /// forward paired with another's backward; bubble (PP/2 − 1)(F&amp;B + B − 3W), PP + 1 stage activations.</summary>
    DualPipeV,

    /// <summary>DualPipe (DeepSeek-V3): two pipelines in opposite directions over the same p devices, device r holding
    /// stage r of one and p − 1 − r of the other (parameters 2×); half the micro-batches enter at each end.</summary>
    DualPipe,
}

public static class ScheduleNames
{
    public static IReadOnlyDictionary<string, ScheduleKind> ByName { get; } =
        new Dictionary<string, ScheduleKind>(StringComparer.OrdinalIgnoreCase)
        {
            ["gpipe"] = ScheduleKind.GPipe,
            ["1f1b"] = ScheduleKind.OneFOneB,
            ["interleaved"] = ScheduleKind.Interleaved1F1B,
            ["interleaved-1f1b"] = ScheduleKind.Interleaved1F1B,
            ["zb-h1"] = ScheduleKind.ZeroBubbleH1,
            ["zbh1"] = ScheduleKind.ZeroBubbleH1,
            ["interleaved-zb"] = ScheduleKind.InterleavedZeroBubble,
            ["zbv"] = ScheduleKind.ZeroBubbleV,
            ["dualpipev"] = ScheduleKind.DualPipeV,
            ["dualpipe"] = ScheduleKind.DualPipe,
        };

    /// <summary>Every schedule, in the order the pickers list them.</summary>
    public static IReadOnlyList<ScheduleKind> All { get; } = Enum.GetValues<ScheduleKind>();

    public static string Name(ScheduleKind kind) =>
        kind switch
        {
            ScheduleKind.GPipe => "gpipe",
            ScheduleKind.OneFOneB => "1f1b",
            ScheduleKind.Interleaved1F1B => "interleaved",
            ScheduleKind.ZeroBubbleH1 => "zb-h1",
            ScheduleKind.InterleavedZeroBubble => "interleaved-zb",
            ScheduleKind.ZeroBubbleV => "zbv",
            ScheduleKind.DualPipeV => "dualpipev",
            _ => "dualpipe",
        };

    /// <summary>The name a person reads.</summary>
    public static string Title(ScheduleKind kind) =>
        kind switch
        {
            ScheduleKind.GPipe => "GPipe",
            ScheduleKind.OneFOneB => "1F1B",
            ScheduleKind.Interleaved1F1B => "Interleaved 1F1B",
            ScheduleKind.ZeroBubbleH1 => "Zero Bubble H1",
            ScheduleKind.InterleavedZeroBubble => "Interleaved Zero Bubble",
            ScheduleKind.ZeroBubbleV => "Zero Bubble V",
            ScheduleKind.DualPipeV => "DualPipeV",
            _ => "DualPipe",
        };

    public static ScheduleKind Parse(string name) =>
        ByName.TryGetValue(name?.Trim() ?? "", out var kind)
            ? kind
            : throw new ArgumentException(
                $"Unknown schedule '{name}'. Use one of: {string.Join(", ", All.Select(Name))}."
            );

    /// <summary>
    /// The schedule's own rule on devices p and micro-batches m, or null when it can run: Megatron-LM's interleaving
    /// needs m a multiple of p; torch's interleaved zero bubble m a multiple of its rounds max(1, ⌊m/p⌋); DualPipeV
    /// m ≥ 2p; DualPipe p even, m even and m ≥ 2p (DeepSeek's DualPipe asserts all three).
    /// </summary>
    public static string? Rule(ScheduleKind kind, int devices, int microBatches)
    {
        var rounds = Math.Max(1, microBatches / Math.Max(1, devices));
        return kind switch
        {
            ScheduleKind.Interleaved1F1B when microBatches % devices != 0 =>
                $"Interleaved 1F1B needs the micro-batches (m = {microBatches}) to be a multiple of the "
                    + $"devices (p = {devices}), as Megatron-LM requires.",
            ScheduleKind.InterleavedZeroBubble when microBatches % rounds != 0 =>
                $"Interleaved zero bubble runs m in rounds of max(1, ⌊m/p⌋) = {rounds}; m = "
                    + $"{microBatches} is not a multiple of it (torch.distributed.pipelining's rule). Use m = "
                    + $"{rounds * (microBatches / rounds)} or {rounds * (microBatches / rounds + 1)}.",
            ScheduleKind.DualPipeV when microBatches < 2 * devices =>
                $"DualPipeV needs at least 2p = {2 * devices} micro-batches (one per stage of the V); m "
                    + $"= {microBatches}.",
            ScheduleKind.DualPipe when devices % 2 != 0 =>
                $"DualPipe needs an even number of devices (its two pipelines meet in the middle); p = {devices}.",
            ScheduleKind.DualPipe when microBatches % 2 != 0 || microBatches < 2 * devices =>
                $"DualPipe needs an even number of micro-batches, at least 2p = {2 * devices} (half "
                    + $"enter at each end); m = {microBatches}.",
            _ => null,
        };
    }

    /// <summary>Micro-batches whose activations device <paramref name="stage"/> holds at most, in units of its stage's
    /// activations.</summary>
    /// <remarks>
    /// In units of that stage's activations; <paramref name="stages"/> counts the partition's stages (2p for the V
    /// schedules, p·v interleaved). Stage j of a V holds 2p − j, as 1F1B over 2p stages would (ZBV and DualPipeV
    /// alike; the device's two chunks peak together at 2p and 2p + 1, DeepSeek's PP + 1). Interleaved zero bubble warms
    /// up (v − 1)·r + p − i − 1 forwards, r = m / max(1, ⌊m/p⌋) (torch's rounds). A DualPipe device holds p + 1 stage
    /// activations of its two stages together, counted here as p + 1 of this one.
    /// </remarks>
    public static double InFlight(ScheduleKind kind, int stage, int stages, int microBatches, int virtualStages = 1) =>
        kind switch
        {
            ScheduleKind.GPipe => microBatches,
            ScheduleKind.Interleaved1F1B => Math.Min(
                (double)microBatches * virtualStages,
                (stages - stage - 1) * 2 + (virtualStages - 1) * stages + 1
            ) / virtualStages,
            ScheduleKind.InterleavedZeroBubble => Math.Min(
                (double)microBatches * virtualStages,
                (virtualStages - 1) * RoundSize(stages, microBatches) + stages - stage
            ) / virtualStages,
            ScheduleKind.DualPipe => stages + 1,
            _ => Math.Min(stages - stage, microBatches),
        };

    /// <summary>Copies of a stage's weights the devices hold: two for DualPipe (one per direction), else one.</summary>
    public static int WeightCopies(ScheduleKind kind) => kind == ScheduleKind.DualPipe ? 2 : 1;

    /// <summary>torch's interleaved rounds: micro-batches per round, m / max(1, ⌊m/p⌋).</summary>
    public static int RoundSize(int devices, int microBatches) =>
        microBatches / Math.Max(1, microBatches / Math.Max(1, devices));
}

/// <summary>How a schedule lays the model's stages on its p devices.</summary>
public static class SchedulePlacement
{
    /// <summary>Whether the schedule takes a chunk count v from the user (the interleaved ones).</summary>
    public static bool UsesVirtualStages(ScheduleKind kind) =>
        kind is ScheduleKind.Interleaved1F1B or ScheduleKind.InterleavedZeroBubble;

    /// <summary>The V schedules: device r runs stages r and 2p − 1 − r.</summary>
    public static bool IsV(ScheduleKind kind) => kind is ScheduleKind.ZeroBubbleV or ScheduleKind.DualPipeV;

    /// <summary>Model chunks on each device: v when interleaved, two for the V schedules and DualPipe, else
    /// one.</summary>
    public static int ChunksPerDevice(ScheduleKind kind, int virtualStages) =>
        UsesVirtualStages(kind) ? virtualStages
        : IsV(kind) || kind == ScheduleKind.DualPipe ? 2
        : 1;

    /// <summary>
    /// The pieces the model is cut into for p devices: p times the chunks per device, except DualPipe, whose two
    /// directions run the same p pieces (each device holds two of them: the parameters twice over).
    /// </summary>
    public static int Stages(ScheduleKind kind, int devices, int virtualStages) =>
        kind == ScheduleKind.DualPipe ? devices : devices * ChunksPerDevice(kind, virtualStages);

    /// <summary>
    /// The device that runs stage <paramref name="stage"/>: j mod p when looped, the V's r or 2p − 1 − r, and for
    /// DualPipe's reverse direction p − 1 − j.
    /// </summary>
    public static int Device(ScheduleKind kind, int stage, int devices, bool reverse = false) =>
        IsV(kind) ? (stage < devices ? stage : 2 * devices - 1 - stage)
        : kind == ScheduleKind.DualPipe ? (reverse ? devices - 1 - stage : stage)
        : stage % devices;

    /// <summary>Which of its chunks stage <paramref name="stage"/> is on its device (for DualPipe, the
    /// direction).</summary>
    public static int Chunk(ScheduleKind kind, int stage, int devices, bool reverse = false) =>
        IsV(kind) ? (stage < devices ? 0 : 1)
        : kind == ScheduleKind.DualPipe ? (reverse ? 1 : 0)
        : stage / devices;

    /// <summary>The stages whose weights device <paramref name="device"/> holds.</summary>
    public static IReadOnlyList<int> StagesOn(ScheduleKind kind, int device, int devices, int virtualStages) =>
        IsV(kind) ? [device, 2 * devices - 1 - device]
        : kind == ScheduleKind.DualPipe ? [device, devices - 1 - device]
        : Enumerable.Range(0, ChunksPerDevice(kind, virtualStages)).Select(k => k * devices + device).ToArray();
}

/// <summary>A per-device memory budget for memory-capped partitioning: model state plus in-flight
/// activations.</summary>
public sealed record StageMemory(
    long BudgetBytes,
    double StateBytesPerParameter,
    ScheduleKind Schedule,
    int MicroBatches,
    int VirtualStages = 1
)
{
    public long Bytes(IReadOnlyList<PipelineUnit> units, int from, int to, int stage, int stages)
    {
        double parameters = 0,
            activations = 0;
        for (var u = from; u < to; u++)
        {
            parameters += units[u].Parameters;
            activations += units[u].ActivationBytes;
        }
        return (long)
            Math.Ceiling(
                parameters * StateBytesPerParameter * ScheduleNames.WeightCopies(Schedule)
                    + ScheduleNames.InFlight(Schedule, stage, stages, MicroBatches, VirtualStages) * activations
            );
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
                return $"Unit {u} ({units[u].Name}) alone needs {Formatting.Units.Bytes(alone)} on any device, "
                    + $"over the {Formatting.Units.Bytes(BudgetBytes)} budget: no split fits. Use more memory, "
                    + "recomputation, or a smaller micro-batch.";
        }
        return $"No split of {units.Count} units into {stages} stages fits "
            + $"{Formatting.Units.Bytes(BudgetBytes)} per device with {ScheduleNames.Name(Schedule)} and "
            + $"{MicroBatches} micro-batches: add stages or memory.";
    }
}
