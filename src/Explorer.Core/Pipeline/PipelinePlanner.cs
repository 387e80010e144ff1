namespace Explorer.Core.Pipeline;

/// <summary>The partition methods the planner offers.</summary>
public enum PartitionMethod
{
    Uniform,
    Parameters,
    Optimal,
    Manual,
}

/// <summary>Everything a plan is made from.</summary>
public sealed record PlanRequest
{
    public required IReadOnlyList<PipelineUnit> Units { get; init; }

    /// <summary>Devices p.</summary>
    public int Stages { get; init; } = 4;
    public int MicroBatches { get; init; } = 8;
    public ScheduleKind Schedule { get; init; } = ScheduleKind.OneFOneB;

    /// <summary>Model chunks per device for the interleaved schedules (the V schedules and DualPipe place
    /// two).</summary>
    public int VirtualStages { get; init; } = 1;
    public PartitionMethod Method { get; init; } = PartitionMethod.Optimal;

    /// <summary>First unit of each (virtual) stage after the first, for <see cref="PartitionMethod.Manual"/>.</summary>
    public IReadOnlyList<int>? Boundaries { get; init; }
    public UniformPartitioner Uniform { get; init; } = new();

    /// <summary>Device memory; the optimal method keeps every device within it when set.</summary>
    public long? MemoryBudgetBytes { get; init; }

    /// <summary>Model state bytes per parameter a device holds (mixed-precision Adam unsharded by default).</summary>
    public double StateBytesPerParameter { get; init; } = Accounting.MemoryAccount.AdamBytesPerParameter;

    /// <summary>Point-to-point transfer between devices, ms.</summary>
    public double TransferMs { get; init; }

    /// <summary>Tokens in one micro-batch (s·b), for throughput.</summary>
    public long TokensPerMicroBatch { get; init; } = 4096;

    /// <summary>The stages the model is cut into: p·v interleaved, 2p for the V schedules, p otherwise.</summary>
    public int PartitionStages => SchedulePlacement.Stages(Schedule, Stages, VirtualStages);

    /// <summary>Most micro-batches a plan may have.</summary>
    public const int MaxMicroBatches = 65_536;

    /// <summary>Most (virtual) stage × micro-batch steps one simulation runs (a few seconds here at the
    /// limit).</summary>
    public const long MaxSimulatedSteps = 1L << 22;

    private long PartitionStagesChecked =>
        Schedule == ScheduleKind.DualPipe
            ? Stages
            : (long)Stages
                * (
                    SchedulePlacement.UsesVirtualStages(Schedule)
                        ? VirtualStages
                        : SchedulePlacement.ChunksPerDevice(Schedule, 1)
                );

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (Stages < 1)
            problems.Add($"stages p = {Stages}: use at least 1");
        if (MicroBatches is < 1 or > MaxMicroBatches)
            problems.Add($"micro-batches m = {MicroBatches}: use 1 to {MaxMicroBatches:N0}");
        if (VirtualStages < 1)
            problems.Add($"virtual stages v = {VirtualStages}: use at least 1");
        if (VirtualStages > 1 && !SchedulePlacement.UsesVirtualStages(Schedule))
            problems.Add(
                $"virtual stages v = {VirtualStages}: only the interleaved schedules take them "
                    + $"({ScheduleNames.Name(Schedule)} places {SchedulePlacement.ChunksPerDevice(Schedule, 1)} "
                    + "per device itself)"
            );
        if (Units.Count > 0 && PartitionStagesChecked > Units.Count)
            problems.Add(
                $"{PartitionStagesChecked} stages is more than the {Units.Count} units: every stage "
                    + "needs at least one unit"
            );
        if (Units.Count == 0)
            problems.Add("there are no units");
        if (
            Stages >= 1
            && VirtualStages >= 1
            && MicroBatches is >= 1 and <= MaxMicroBatches
            && PartitionStagesChecked * MicroBatches > MaxSimulatedSteps
        )
            problems.Add(
                $"{PartitionStagesChecked:N0} stages × {MicroBatches:N0} micro-batches is "
                    + $"{PartitionStagesChecked * MicroBatches:N0} stage steps to simulate; keep it at or "
                    + $"under {MaxSimulatedSteps:N0}"
            );
        if (!(StateBytesPerParameter >= 0) || double.IsInfinity(StateBytesPerParameter))
            problems.Add($"state bytes per parameter {StateBytesPerParameter}: must be finite and not negative");
        if (MemoryBudgetBytes is <= 0)
            problems.Add($"memory budget {MemoryBudgetBytes} bytes: must be positive");
        if (!(TransferMs >= 0) || double.IsInfinity(TransferMs))
            problems.Add($"transfer time {TransferMs} ms: must be finite and not negative");
        if (Method == PartitionMethod.Manual && Boundaries is null)
            problems.Add("manual partitioning needs boundaries");
        foreach (var (u, i) in Units.Select((u, i) => (u, i)))
            if (
                !(u.Forward >= 0 && u.InputGradient >= 0 && u.WeightGradient >= 0)
                || double.IsInfinity(u.Time)
                || u.Parameters < 0
                || u.ActivationBytes < 0
            )
            {
                problems.Add(
                    $"unit {i} ({u.Name}): times, parameters and activation bytes must be finite and not negative"
                );
                break;
            }
        return problems;
    }
}

/// <summary>One device's memory: model state plus the peak of the activations it holds.</summary>
public sealed record DeviceMemory(int Device, long StateBytes, long PeakActivationBytes, int PeakInFlight)
{
    public long TotalBytes => StateBytes + PeakActivationBytes;
}

/// <summary>A plan, its simulated schedule, memory per device, and what to watch out for.</summary>
public sealed record PlanReport(
    PlanRequest Request,
    StagePlan Plan,
    SimulationResult Simulation,
    IReadOnlyList<DeviceMemory> Memory,
    IReadOnlyList<string> Warnings
)
{
    /// <summary>Tokens per second for the whole pipeline (one data-parallel replica).</summary>
    public double TokensPerSecond =>
        Simulation.Makespan == 0
            ? 0
            : Request.MicroBatches * (double)Request.TokensPerMicroBatch / (Simulation.Makespan / 1000);

    /// <summary>The device that runs stage <paramref name="stage"/> (for DualPipe, in the direction entering at device
    /// 0).</summary>
    public int DeviceOf(int stage) => SchedulePlacement.Device(Request.Schedule, stage, Request.Stages);
}

/// <summary>The outcome of planning: a report, or why no plan can be made.</summary>
public sealed record PlanOutcome(PlanReport? Report, string? Refusal)
{
    public bool Succeeded => Report is not null;
}

/// <summary>Composes the pipeline pieces: costs → partition → schedule → memory and warnings.</summary>
public static class PipelinePlanner
{
    public static PlanOutcome Plan(PlanRequest request)
    {
        var problems = request.Problems();
        if (problems.Count > 0)
            return new PlanOutcome(null, "Cannot plan: " + string.Join("; ", problems) + ".");
        var memory = request.MemoryBudgetBytes is { } budget
            ? new StageMemory(
                budget,
                request.StateBytesPerParameter,
                request.Schedule,
                request.MicroBatches,
                request.VirtualStages
            )
            : null;
        IPartitioner partitioner = request.Method switch
        {
            PartitionMethod.Uniform => request.Uniform,
            PartitionMethod.Parameters => BalancedPartitioner.Parameters(),
            PartitionMethod.Manual => new ManualPartitioner(request.Boundaries!),
            _ => BalancedPartitioner.Optimal(memory),
        };
        var partition = partitioner.Partition(request.Units, request.PartitionStages);
        if (!partition.Succeeded)
            return new PlanOutcome(null, partition.Refusal);
        try
        {
            return new PlanOutcome(Report(request, partition.Plan!), null);
        }
        catch (PlanException e)
        {
            return new PlanOutcome(null, e.Message); // a schedule's own rule (e.g. interleaved needs m divisible by p)
        }
    }

    private static PlanReport Report(PlanRequest request, StagePlan plan)
    {
        var times = plan.Stages.Select(s => new StageTimes(s.Forward, s.InputGradient, s.WeightGradient)).ToArray();
        SimulationResult simulation;
        try
        {
            simulation = ScheduleSimulator.Simulate(
                request.Schedule,
                times,
                request.MicroBatches,
                request.VirtualStages,
                request.TransferMs,
                plan.Stages.Select(s => s.ActivationBytes).ToArray()
            );
        }
        catch (ArgumentException e)
        {
            throw new PlanException(e.Message);
        }
        var devices = request.Stages;
        var memory = Enumerable
            .Range(0, devices)
            .Select(d =>
            {
                var held = SchedulePlacement.StagesOn(request.Schedule, d, devices, request.VirtualStages);
                long parameters = held.Sum(s => plan.Stages[s].Parameters);
                return new DeviceMemory(
                    d,
                    (long)Math.Ceiling(parameters * request.StateBytesPerParameter),
                    simulation.PeakActivationBytes[d],
                    simulation.PeakInFlight[d]
                );
            })
            .ToArray();

        var warnings = new List<string>();
        if (request.MemoryBudgetBytes is { } budget)
            foreach (var m in memory.Where(m => m.TotalBytes > budget))
                warnings.Add(
                    $"Device {m.Device} needs {Formatting.Units.Bytes(m.TotalBytes)}, over the "
                        + $"{Formatting.Units.Bytes(budget)} budget."
                );
        if (plan.Imbalance > 1.1)
        {
            var slowest = plan.Stages.MaxBy(s => s.Time)!;
            warnings.Add(
                $"Stage {slowest.Index} is the slowest, {Formatting.Units.Ratio(plan.Imbalance)}× the "
                    + "mean stage time: every other stage waits for it."
            );
        }
        if (request.MicroBatches < devices)
            warnings.Add(
                $"With m = {request.MicroBatches} micro-batches < p = {devices} devices, the pipeline "
                    + "never fills: use m ≥ p (4p or more keeps the bubble small)."
            );
        return new PlanReport(request, plan, simulation, memory, warnings);
    }
}

/// <summary>A plan that cannot be simulated, with the reason.</summary>
public sealed class PlanException(string message) : Exception(message);
