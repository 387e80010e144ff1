namespace Explorer.Core.Parallel;

/// <summary>
/// One accelerator as the planner sees it: dense bf16 matrix throughput (no sparsity), memory and its bandwidth.
/// Every figure is editable; the presets carry the vendor's datasheet numbers.
/// </summary>
public sealed record Gpu(
    string Key,
    string Name,
    double PeakBf16Flops,
    long MemoryBytes,
    double MemoryBytesPerSecond,
    string Source
)
{
    private const double Tera = 1e12;
    private const long GB = 1_000_000_000;

    /// <summary>NVIDIA A100 80GB SXM: 312 TFLOP/s dense BF16, 80 GB HBM2e at 2,039 GB/s (A100 datasheet,
    /// 2021).</summary>
    public static readonly Gpu A100_80GB = new(
        "a100-80gb",
        "A100 80GB SXM",
        312 * Tera,
        80 * GB,
        2039e9,
        "NVIDIA A100 Tensor Core GPU datasheet (2021): BF16 312 TFLOPS dense (624 with sparsity), 80 GB "
            + "HBM2e, 2,039 GB/s"
    );

    /// <summary>NVIDIA H100 SXM5 80GB: 989 TFLOP/s dense BF16, 80 GB HBM3 at 3.35 TB/s (H100 datasheet).</summary>
    public static readonly Gpu H100_80GB = new(
        "h100-80gb",
        "H100 80GB SXM",
        989 * Tera,
        80 * GB,
        3.35e12,
        "NVIDIA H100 Tensor Core GPU datasheet: SXM BF16 1,979 TFLOPS with sparsity (989 dense), 80 GB HBM3, 3.35 TB/s"
    );

    /// <summary>NVIDIA H200 SXM 141GB: 989 TFLOP/s dense BF16, 141 GB HBM3e at 4.8 TB/s (H200 datasheet).</summary>
    public static readonly Gpu H200 = new(
        "h200",
        "H200 141GB SXM",
        989 * Tera,
        141 * GB,
        4.8e12,
        "NVIDIA H200 Tensor Core GPU datasheet: SXM BF16 1,979 TFLOPS with sparsity (989 dense), 141 GB HBM3e, 4.8 TB/s"
    );

    public static IReadOnlyList<Gpu> Presets { get; } = [A100_80GB, H100_80GB, H200];

    public static IReadOnlyList<string> Keys { get; } = Presets.Select(g => g.Key).ToArray();

    public static Gpu Get(string key) =>
        Presets.FirstOrDefault(g => string.Equals(g.Key, key.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown GPU '{key}'. Use one of: {string.Join(", ", Keys)}.");
}
