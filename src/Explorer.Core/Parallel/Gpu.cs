namespace Explorer.Core.Parallel;

/// <summary>
/// One accelerator as the planner sees it: dense bf16 matrix throughput (no sparsity), memory and its bandwidth, and
/// the fraction of that peak a matmul reaches at its best. Every figure is editable; the presets carry the vendor's
/// datasheet numbers and a published measurement of the matmul ceiling.
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

    /// <summary>
    /// Fraction of <see cref="PeakBf16Flops"/> the best-shaped large bf16 matmul reaches on this GPU: the "maximum
    /// achievable matmul FLOPS" (MAMF) table of Bekman's Machine Learning Engineering (stas00/ml-engineering @ b9e2972,
    /// compute/accelerator/README.md, BF16, mean of 100 iterations, mamf-finder.py): A100 SXM 271.2 of 312 TFLOP/s
    /// (torch 2.6.0+cu126), H100 SXM 794.5 of 989 (torch 2.7.0+cu126). The clock a GPU holds under a full matmul load,
    /// not its boost clock, sets it. A GPU without a measurement takes <see cref="UnmeasuredMatmulFraction"/>.
    /// </summary>
    public double MatmulFraction { get; init; } = UnmeasuredMatmulFraction;

    /// <summary>The lower of the two measured fractions (the H100's), for a GPU nobody has measured.</summary>
    public const double UnmeasuredMatmulFraction = 0.80;

    /// <summary>The most dense bf16 FLOP/s a matmul reaches on this GPU: peak × <see cref="MatmulFraction"/>.</summary>
    public double MatmulFlops => PeakBf16Flops * MatmulFraction;
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
            + "HBM2e, 2,039 GB/s; matmul ceiling 271.2 TFLOP/s measured (ml-engineering MAMF table)"
    )
    {
        MatmulFraction = 271.2 / 312,
    };

    /// <summary>NVIDIA H100 SXM5 80GB: 989 TFLOP/s dense BF16, 80 GB HBM3 at 3.35 TB/s (H100 datasheet).</summary>
    public static readonly Gpu H100_80GB = new(
        "h100-80gb",
        "H100 80GB SXM",
        989 * Tera,
        80 * GB,
        3.35e12,
        "NVIDIA H100 Tensor Core GPU datasheet: SXM BF16 1,979 TFLOPS with sparsity (989 dense), 80 GB HBM3, "
            + "3.35 TB/s; matmul ceiling 794.5 TFLOP/s measured (ml-engineering MAMF table)"
    )
    {
        MatmulFraction = 794.5 / 989,
    };

    /// <summary>NVIDIA H200 SXM 141GB: 989 TFLOP/s dense BF16, 141 GB HBM3e at 4.8 TB/s (H200 datasheet).</summary>
    public static readonly Gpu H200 = new(
        "h200",
        "H200 141GB SXM",
        989 * Tera,
        141 * GB,
        4.8e12,
        "NVIDIA H200 Tensor Core GPU datasheet: SXM BF16 1,979 TFLOPS with sparsity (989 dense), 141 GB HBM3e, "
            + "4.8 TB/s; matmul ceiling taken as the H100's (the same GH100 die, clocks and 700 W)"
    )
    {
        MatmulFraction = 794.5 / 989,
    };

    public static IReadOnlyList<Gpu> Presets { get; } = [A100_80GB, H100_80GB, H200];

    public static IReadOnlyList<string> Keys { get; } = Presets.Select(g => g.Key).ToArray();

    public static Gpu Get(string key) =>
        Presets.FirstOrDefault(g => string.Equals(g.Key, key.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown GPU '{key}'. Use one of: {string.Join(", ", Keys)}.");
}
