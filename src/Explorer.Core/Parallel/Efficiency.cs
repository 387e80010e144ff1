namespace Explorer.Core.Parallel;

/// <summary>
/// How close real kernels and collectives come to the hardware's peaks. One set for every model and cluster: the
/// layer efficiency is fitted on Table 1 of Narayanan et al. (SC21, "Efficient Large-Scale Language Model Training on
/// GPU Clusters Using Megatron-LM") alone, as the least mean |error| over its ten rows (1.7B to 1T on A100s) on a grid
/// of peak fractions 0.55–0.85 by 0.01 and half-efficiency widths 0–2,000 by 50; a test keeps it the optimum.
/// </summary>
public sealed record Efficiency
{
    /// <summary>
    /// Fraction of peak a transformer layer's work reaches as the hidden size grows without bound (matmuls plus the
    /// memory-bound softmax, norms and activations between them).
    /// </summary>
    public double MatmulPeakFraction { get; init; } = 0.67;

    /// <summary>
    /// The hidden size at which a layer reaches half of <see cref="MatmulPeakFraction"/>: achieved fraction =
    /// peak fraction · h / (h + this). Small layers lose more to kernel launches and memory-bound operations.
    /// </summary>
    public double HalfEfficiencyHidden { get; init; } = 900;

    /// <summary>Fraction of a link's bandwidth a collective or point-to-point transfer achieves.</summary>
    public double LinkFraction { get; init; } = 0.8;

    /// <summary>
    /// Fraction of the GPU's memory bandwidth the optimizer step's streaming kernels reach (an assumption, not fitted:
    /// the step is a small share of every run the estimator is checked on).
    /// </summary>
    public double MemoryBandwidthFraction { get; init; } = 0.8;

    /// <summary>Fraction of the data-parallel gradient reduction hidden behind the backward (0: none, as in
    /// SC21).</summary>
    public double DataParallelOverlap { get; init; }

    /// <summary>Memory a GPU cannot give to the model: CUDA context, NCCL buffers, allocator fragmentation.</summary>
    public long ReservedBytes { get; init; } = 3L << 30;

    public static Efficiency Default { get; } = new();

    /// <summary>Achieved fraction of peak for a layer of hidden size <paramref name="hidden"/>.</summary>
    public double LayerFraction(int hidden) => MatmulPeakFraction * hidden / (hidden + HalfEfficiencyHidden);
}
