namespace Explorer.Core.Parallel;

/// <summary>
/// How close real kernels and collectives come to the hardware. One set for every model and cluster. A layer's work
/// runs at the GPU's measured matmul ceiling (<see cref="Gpu.MatmulFlops"/>) times three factors: how much of it the
/// layer's GEMMs reach (<see cref="MatmulFraction"/>); the memory-bound work beside them (norms, activations, softmax,
/// residuals), which grows with h per token while the GEMMs grow with h², so it costs a layer of hidden size h the
/// fraction h / (h + H) with H proportional to the GPU's FLOPs per byte of memory bandwidth; and the width of each
/// GPU's shard of the GEMMs, h / t, whose tiles fill the GPU the less the narrower it is: w / (w + G). The three
/// parameters are fitted on Table 1 of Narayanan et al. (SC21, "Efficient Large-Scale Language Model Training on GPU
/// Clusters Using Megatron-LM") alone, as the least mean |error| over its ten rows (1.7B to 1T on A100s) on a stated
/// grid; a test keeps them the optimum. Other GPUs differ only by their measured matmul ceiling and memory bandwidth.
/// </summary>
public sealed record Efficiency
{
    /// <summary>
    /// Fraction of the GPU's measured matmul ceiling a transformer layer's work reaches as its hidden size and shard
    /// width grow without bound.
    /// </summary>
    public double MatmulFraction { get; init; } = 0.81;

    /// <summary>
    /// The hidden size at which the memory-bound work costs a layer half its speed, per FLOP per byte of the GPU (its
    /// matmul ceiling over its memory bandwidth): H = this × <see cref="Gpu.MatmulFlops"/> / <see
    /// cref="Gpu.MemoryBytesPerSecond"/>. On an A100 (271.2 TFLOP/s over 2,039 GB/s) 6.5 gives H = 865; on an H100
    /// (794.5 TFLOP/s over 3.35 TB/s) H = 1,542: the same layer loses more of a faster GPU to memory-bound work.
    /// </summary>
    public double HalfEfficiencyHiddenPerFlopPerByte { get; init; } = 6.5;

    /// <summary>
    /// The width of a GPU's shard of the layer's GEMMs, h / t, at which tile and wave quantisation cost half the
    /// speed: a factor w / (w + this).
    /// </summary>
    public double HalfEfficiencyShardWidth { get; init; } = 100;

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

    /// <summary>The hidden size H at which the memory-bound work halves a layer's speed on <paramref
    /// name="gpu"/>.</summary>
    public double HalfEfficiencyHidden(Gpu gpu) =>
        HalfEfficiencyHiddenPerFlopPerByte * gpu.MatmulFlops / gpu.MemoryBytesPerSecond;

    /// <summary>
    /// Achieved fraction of <paramref name="gpu"/>'s datasheet peak for a layer of hidden size <paramref
    /// name="hidden"/> split <paramref name="tensor"/> ways: the matmul ceiling's fraction × <see
    /// cref="MatmulFraction"/> × h / (h + H) × w / (w + G), w = h / t.
    /// </summary>
    public double LayerFraction(Gpu gpu, int hidden, int tensor)
    {
        double h = hidden,
            w = h / tensor;
        return gpu.MatmulFraction
            * MatmulFraction
            * h
            / (h + HalfEfficiencyHidden(gpu))
            * w
            / (w + HalfEfficiencyShardWidth);
    }
}
