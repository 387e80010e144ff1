namespace Explorer.Core.Parallel;

/// <summary>Where one GPU's memory goes (the fullest GPU: the first pipeline stage, or the last when the head is
/// larger).</summary>
public sealed record MemoryPerGpu(long Weights, long Gradients, long OptimizerState, long Activations, long Reserved)
{
    public long Total => Weights + Gradients + OptimizerState + Activations + Reserved;
}

/// <summary>Where a step's time goes, in seconds; the parts add up to <see cref="Step"/>.</summary>
/// <param name="ContextComm">The context-parallel ring's key/value exchange not hidden behind attention.</param>
/// <param name="Optimizer">The optimizer step: Adam streaming its state through memory once per step.</param>
public sealed record StepTime(
    double Compute,
    double TensorComm,
    double PipelineComm,
    double Bubble,
    double DataComm,
    double ContextComm = 0,
    double Optimizer = 0
)
{
    public double Step => Compute + TensorComm + PipelineComm + Bubble + DataComm + ContextComm + Optimizer;
}

/// <summary>The prediction for one configuration, or the rules it breaks.</summary>
public sealed record ParallelEstimate(
    ParallelConfig Config,
    IReadOnlyList<string> Violations,
    StepTime? Time,
    MemoryPerGpu? Memory,
    long GpuMemoryBytes,
    double TokensPerSecond,
    double HardwareFlopsPerGpu,
    double ModelFlopsUtilization,
    double BubbleFraction,
    string Bottleneck
)
{
    public bool Valid => Violations.Count == 0;
    public bool Fits => Valid && Memory is not null && Memory.Total <= GpuMemoryBytes;
    public double StepSeconds => Time?.Step ?? double.NaN;
}
