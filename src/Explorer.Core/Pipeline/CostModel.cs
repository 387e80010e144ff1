using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Core.Pipeline;

/// <summary>A decoder layer's FLOPs for one micro-batch: forward, input gradient, weight gradient, and
/// recomputation.</summary>
public readonly record struct LayerFlops(
    double Forward,
    double InputGradient,
    double WeightGradient,
    double Recomputed
);

/// <summary>How a unit's FLOPs are counted.</summary>
public enum FlopConvention
{
    /// <summary>Zero Bubble's (arXiv 2401.10241): the layer's F, B and W as written; nothing is recomputed.</summary>
    ZeroBubble,

    /// <summary>
    /// Megatron-LM's hardware count (Narayanan et al. 2021): the backward also runs what recomputation dropped, the
    /// whole forward under full recomputation and the attention core (4·s²·b·h) under selective.
    /// </summary>
    Megatron,
}

/// <summary>How units are costed: the work per micro-batch and the device that runs it.</summary>
public sealed record CostSettings
{
    public int SequenceLength { get; init; } = 4096;
    public int MicroBatchSize { get; init; } = 1;

    /// <summary>Sustained device throughput in TFLOP/s (peak × achievable utilisation).</summary>
    public double DeviceTflops { get; init; } = 400;
    public Recomputation Recomputation { get; init; } = Recomputation.Selective;

    /// <summary>Whether the recomputed forward counts in the backward's time (Megatron's count) or not (Zero
    /// Bubble's).</summary>
    public FlopConvention Flops { get; init; } = FlopConvention.ZeroBubble;

    /// <summary>Bytes of model state per parameter: 16 for mixed-precision Adam without sharding.</summary>
    public int StateBytesPerParameter { get; init; } = MemoryAccount.AdamBytesPerParameter;

    public IReadOnlyList<string> Problems()
    {
        var problems = new List<string>();
        if (SequenceLength < 1)
            problems.Add($"sequence length {SequenceLength}: must be at least 1");
        if (MicroBatchSize < 1)
            problems.Add($"micro-batch size {MicroBatchSize}: must be at least 1");
        if (!(DeviceTflops > 0) || double.IsInfinity(DeviceTflops))
            problems.Add($"device speed {DeviceTflops} TFLOP/s: must be a positive number");
        if (StateBytesPerParameter < 0)
            problems.Add($"state bytes per parameter {StateBytesPerParameter}: must not be negative");
        return problems;
    }
}

/// <summary>
/// Turns a spec into pipeline units. Per micro-batch of b sequences of s tokens, a decoder layer costs
/// F = s·b·(2·N + 4·s·h), B = s·b·(2·N + 8·s·h), W = s·b·2·N FLOPs, N its matmul weights: Zero Bubble's
/// accounting (arXiv 2401.10241), which for MHA with a 4h two-matrix FFN (N = 12h²) is s·b·h·(24h + 4s),
/// s·b·h·(24h + 8s) and 24·s·b·h². The LM head is a matmul of 2·V·h per token each way; the embedding is a
/// lookup. Activations follow Korthikanti et al.; the head keeps bf16 logits and the loss fp32 softmax. Under
/// <see cref="FlopConvention.Megatron"/> the input-gradient time also holds the recomputed forward.
/// </summary>
public static class CostModel
{
    /// <summary>
    /// One decoder layer's FLOPs per micro-batch of <paramref name="microBatch"/> sequences of
    /// <paramref name="sequenceLength"/> tokens, split as Zero Bubble splits them: the forward s·b·(2·N + 4·s·h), the
    /// input gradient s·b·(2·N + 8·s·h) (the attention core has no weights: all of its backward is here), the weight
    /// gradient s·b·2·N; and what <paramref name="recomputation"/> runs again in the backward (the forward under full
    /// recomputation, the attention core 4·s²·b·h under selective). The one layer costing of the pipeline planner and
    /// the parallel estimator. A <paramref name="causalKernel"/> (a fused causal attention kernel such as
    /// FlashAttention) skips the masked half of the s × s scores: the attention core's 4·s·h and 8·s·h per token, and
    /// its selective recomputation, are halved.
    /// </summary>
    public static LayerFlops Layer(
        ModelSpec spec,
        int sequenceLength,
        int microBatch,
        Recomputation recomputation,
        bool causalKernel = false
    )
    {
        double tokens = (double)sequenceLength * microBatch,
            keys = sequenceLength * (causalKernel ? 0.5 : 1), // keys each query attends to, on average
            h = spec.HiddenSize;
        var n = (double)ParameterBreakdown.Of(spec).PerLayer.Matmul;
        var forward = tokens * (2 * n + 4 * keys * h);
        return new LayerFlops(
            forward,
            tokens * (2 * n + 8 * keys * h),
            tokens * 2 * n,
            recomputation switch
            {
                Recomputation.Full => forward,
                Recomputation.Selective => tokens * 4 * keys * h,
                _ => 0,
            }
        );
    }

    public static IReadOnlyList<PipelineUnit> Units(ModelSpec spec, CostSettings settings)
    {
        var problems = settings.Problems();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid cost settings: " + string.Join("; ", problems));
        var p = ParameterBreakdown.Of(spec);
        double tokens = (double)settings.SequenceLength * settings.MicroBatchSize;
        long s = settings.SequenceLength,
            b = settings.MicroBatchSize,
            h = spec.HiddenSize,
            v = spec.VocabularySize;
        double Ms(double flops) => flops / (settings.DeviceTflops * 1e12) * 1e3;

        var units = new List<PipelineUnit>(UnitNumbering.Count(spec.Layers))
        {
            new("embedding", UnitKind.Embedding, 0, 0, 0, p.Embedding, checked(2 * s * b * h)),
        };
        var layerActivations = MemoryAccount.ActivationBytesPerLayer(
            spec,
            settings.SequenceLength,
            settings.MicroBatchSize,
            settings.Recomputation
        );
        var layer = Layer(spec, settings.SequenceLength, settings.MicroBatchSize, settings.Recomputation);
        var recomputed = settings.Flops == FlopConvention.ZeroBubble ? 0 : layer.Recomputed;
        for (var i = 0; i < spec.Layers; i++)
            units.Add(
                new PipelineUnit(
                    $"layers.{i}",
                    UnitKind.Layer,
                    Ms(layer.Forward),
                    Ms(layer.InputGradient + recomputed),
                    Ms(layer.WeightGradient),
                    p.PerLayer.Total,
                    layerActivations
                )
            );
        var head = 2.0 * v * h * tokens;
        units.Add(
            new PipelineUnit(
                "norm+lm_head",
                UnitKind.Head,
                Ms(head),
                Ms(head),
                Ms(head),
                p.FinalNorm + p.LmHead,
                checked(2 * s * b * h + 2 * s * b * v)
            )
        );
        // Softmax cross-entropy: a few elementwise passes over the logits, costed at 5 FLOPs per logit each way.
        units.Add(
            new PipelineUnit(
                "loss",
                UnitKind.Loss,
                Ms(5.0 * v * tokens),
                Ms(5.0 * v * tokens),
                0,
                0,
                checked(4 * s * b * v)
            )
        );
        return units;
    }

    /// <summary>
    /// Units from measured or user-given times: one number per unit (the whole F + B + W time; split 1 : 1 : 1
    /// between forward, input gradient and weight gradient as for a matmul-bound layer), or objects.
    /// </summary>
    public static IReadOnlyList<PipelineUnit> FromTimes(IReadOnlyList<double> times)
    {
        for (var i = 0; i < times.Count; i++)
            if (!(times[i] >= 0) || double.IsInfinity(times[i]))
                throw new ArgumentException($"Unit {i} has time {times[i]}; times must be finite and not negative.");
        return times
            .Select((t, i) => new PipelineUnit($"unit.{i}", UnitKind.Layer, t / 3, t / 3, t / 3, 0, 0))
            .ToArray();
    }
}
