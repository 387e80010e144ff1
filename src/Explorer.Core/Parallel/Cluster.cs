namespace Explorer.Core.Parallel;

/// <summary>
/// GPUs in nodes: the links a collective runs over. Bandwidths are per GPU and per direction; latency is per step of
/// a ring collective. Inside a node the GPUs talk over NVLink; between nodes each GPU has its own network adapter.
/// </summary>
public sealed record Cluster(
    Gpu Gpu,
    int GpusPerNode,
    double IntraNodeBytesPerSecond,
    double IntraNodeLatencySeconds,
    double InterNodeBytesPerSecond,
    double InterNodeLatencySeconds
)
{
    /// <summary>Most GPUs in one node the planner accepts.</summary>
    public const int MaxGpusPerNode = 64;

    /// <summary>
    /// The usual 8-GPU node of that GPU: DGX A100 (NVLink 3, 600 GB/s per GPU both directions; 8 × HDR InfiniBand
    /// 200 Gb/s, one per GPU) or DGX H100/H200 (NVLink 4, 900 GB/s; 8 × NDR 400 Gb/s). Latencies are typical NCCL
    /// per-step figures (a few microseconds), an assumption rather than a datasheet number.
    /// </summary>
    public static Cluster Node8(Gpu gpu) =>
        gpu.Key == Gpu.A100_80GB.Key
            ? new Cluster(gpu, 8, 300e9, 10e-6, 25e9, 15e-6)
            : new Cluster(gpu, 8, 450e9, 10e-6, 50e9, 15e-6);

    /// <summary>The rules a cluster description must follow; empty when it is usable.</summary>
    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (GpusPerNode is < 1 or > MaxGpusPerNode)
            problems.Add($"GPUs per node is {GpusPerNode}; it must be between 1 and {MaxGpusPerNode}.");
        if (!(Gpu.PeakBf16Flops > 0) || double.IsInfinity(Gpu.PeakBf16Flops))
            problems.Add($"Peak throughput is {Gpu.PeakBf16Flops}; it must be a positive number of FLOP/s.");
        if (Gpu.MemoryBytes <= 0)
            problems.Add($"GPU memory is {Gpu.MemoryBytes} bytes; it must be positive.");
        foreach (
            var (name, value) in new[]
            {
                ("Intra-node bandwidth", IntraNodeBytesPerSecond),
                ("Inter-node bandwidth", InterNodeBytesPerSecond),
            }
        )
            if (!(value > 0) || double.IsInfinity(value))
                problems.Add($"{name} is {value}; it must be a positive number of bytes per second.");
        foreach (
            var (name, value) in new[]
            {
                ("Intra-node latency", IntraNodeLatencySeconds),
                ("Inter-node latency", InterNodeLatencySeconds),
            }
        )
            if (!(value >= 0) || double.IsInfinity(value))
                problems.Add($"{name} is {value}; it must be zero or a positive number of seconds.");
        return problems;
    }
}
