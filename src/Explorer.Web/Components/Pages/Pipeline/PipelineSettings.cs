using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Web.Components.Pages.Pipeline;

/// <summary>Where the Pipeline page's unit costs come from; the page shows it and lets the user choose.</summary>
public enum CostBasis
{
    /// <summary>The chosen parallel configuration: each unit as one GPU of its t-way group runs it (Megatron's
    /// FLOPs).</summary>
    Configuration,

    /// <summary>The shape alone at the page's TFLOP/s (Zero Bubble's F, B, W).</summary>
    Analytic,

    /// <summary>Timed on the live model on this machine.</summary>
    Measured,
}

/// <summary>What the Pipeline page's controls hold, and the plan requests they make.</summary>
public sealed class PipelineSettings
{
    /// <summary>The model being split: a preset, an edited shape or an uploaded config.json.</summary>
    public ModelSpec Spec { get; set; } = ModelPresets.DeepSeekLlm67B;
    public int Stages { get; set; } = 8;
    public int MicroBatches { get; set; } = 32;
    public ScheduleKind Schedule { get; set; } = ScheduleKind.OneFOneB;
    public int VirtualStages { get; set; } = 2;
    public PartitionMethod Method { get; set; } = PartitionMethod.Optimal;
    public bool AccountForEmbedding { get; set; } = true;
    public bool AccountForLoss { get; set; }
    public int SequenceLength { get; set; } = ModelPresets.DeepSeekLlm67B.ContextLength;
    public int MicroBatchSize { get; set; } = 1;
    public double DeviceTflops { get; set; } = 400;
    public double MemoryGiB { get; set; } = 141;
    public bool FitMemory { get; set; }
    public double TransferMs { get; set; }
    public int[]? ManualBoundaries { get; set; }

    /// <summary>What the plan's unit costs come from, read off what is set: a configuration, measured costs, or
    /// neither.</summary>
    public CostBasis Basis =>
        Parallel is not null ? CostBasis.Configuration
        : MeasuredUnits is not null ? CostBasis.Measured
        : CostBasis.Analytic;

    /// <summary>Unit costs timed on the live model (null: the analytic costs from the shape).</summary>
    public IReadOnlyList<PipelineUnit>? MeasuredUnits { get; set; }

    /// <summary>The stage count the measured costs were timed for (each stage thread's share of the cores depends on
    /// it).</summary>
    public int MeasuredForStages { get; set; }

    /// <summary>
    /// A tensor × pipeline × data configuration chosen on the page: the stages are then its p dimension, each unit
    /// costed as one GPU of its tensor-parallel group runs it, memory with its ZeRO stage, transfers over its links.
    /// </summary>
    public Explorer.Web.Views.ParallelChoice? Parallel { get; set; }

    /// <summary>Takes a configuration's pipeline dimension: stages, micro-batches, schedule, chunks and micro-batch
    /// size.</summary>
    public void Apply(Explorer.Web.Views.ParallelChoice choice)
    {
        var c = choice.Config;
        Parallel = choice;
        Stages = c.Pipeline;
        MicroBatches = c.MicroBatches;
        Schedule = c.Schedule;
        if (SchedulePlacement.UsesVirtualStages(c.Schedule))
            VirtualStages = c.VirtualStages;
        MicroBatchSize = c.MicroBatch;
        MemoryGiB = Math.Round(
            (choice.Cluster.Gpu.MemoryBytes - Explorer.Core.Parallel.Efficiency.Default.ReservedBytes)
                / (double)(1L << 30),
            1
        );
        ManualBoundaries = null;
        MeasuredUnits = null;
    }

    /// <summary>The comparison plan: another method and schedule on the same model and devices.</summary>
    public PartitionMethod CompareMethod { get; set; } = PartitionMethod.Uniform;
    public ScheduleKind CompareSchedule { get; set; } = ScheduleKind.OneFOneB;

    /// <summary>Most tokens per sequence in what runs on the live model here (timing its units, a split training step):
    /// a CPU step stays within seconds.</summary>
    public const int LiveSequenceCap = 256;

    /// <summary>The sequence length of what runs on the live model: the page's, at most <see
    /// cref="LiveSequenceCap"/>.</summary>
    public int LiveSequenceLength => Math.Min(SequenceLength, LiveSequenceCap);

    public CostSettings Costs =>
        new()
        {
            SequenceLength = SequenceLength,
            MicroBatchSize = MicroBatchSize,
            DeviceTflops = DeviceTflops,
        };

    public long MemoryBytes => (long)(MemoryGiB * (1L << 30));

    /// <summary>Units for the current model and cost settings, or the problems with the settings.</summary>
    public (IReadOnlyList<PipelineUnit>? Units, string? Problem) Units()
    {
        var problems = Costs.Problems().ToList();
        if (SequenceLength > Spec.ContextLength)
            problems.Add($"sequence length {SequenceLength}: {Spec.Name} has a context of {Spec.ContextLength}");
        if (!(MemoryGiB > 0))
            problems.Add($"device memory {MemoryGiB} GiB: must be positive");
        if (problems.Count > 0)
            return (null, "Check the settings: " + string.Join("; ", problems) + ".");
        if (Parallel is { } chosen)
            return (
                Explorer.Core.Parallel.ParallelEstimator.Units(Spec, SequenceLength, chosen.Cluster, chosen.Config),
                null
            );
        return (MeasuredUnits ?? CostModel.Units(Spec, Costs), null);
    }

    public PlanRequest Request(IReadOnlyList<PipelineUnit> units, PartitionMethod method, ScheduleKind schedule) =>
        new()
        {
            Units = units,
            Stages = Stages,
            MicroBatches = MicroBatches,
            Schedule = schedule,
            VirtualStages = SchedulePlacement.UsesVirtualStages(schedule) ? VirtualStages : 1,
            Method = method,
            Boundaries = method == PartitionMethod.Manual ? ManualBoundaries : null,
            Uniform = new UniformPartitioner(AccountForEmbedding, AccountForLoss),
            MemoryBudgetBytes = FitMemory ? MemoryBytes : null,
            StateBytesPerParameter = Parallel is { } chosen
                ? Explorer.Core.Parallel.ParallelEstimator.StateBytesPerParameter(chosen.Config)
                : Explorer.Core.Accounting.MemoryAccount.AdamBytesPerParameter,
            TransferMs = Parallel is { } p
                ? 1e3
                    * Explorer.Core.Parallel.ParallelEstimator.TransferSeconds(
                        Spec,
                        SequenceLength,
                        p.Cluster,
                        p.Config
                    )
                : TransferMs,
            TokensPerMicroBatch = (long)SequenceLength * MicroBatchSize,
        };
}
