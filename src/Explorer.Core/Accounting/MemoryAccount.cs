using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>How much of a layer's forward activations are kept for the backward pass.</summary>
public enum Recomputation
{
    /// <summary>Keep everything: s·b·h·(34 + 5·a·s/h) bytes per layer.</summary>
    None,
    /// <summary>Recompute the attention core (scores, softmax, dropout): s·b·h·34 bytes.</summary>
    Selective,
    /// <summary>Keep only the layer input, recompute the rest: 2·s·b·h bytes.</summary>
    Full,
}

/// <summary>Memory of weights, optimizer state, KV cache and activations.</summary>
public static class MemoryAccount
{
    /// <summary>Bytes of mixed-precision Adam training state per parameter: 2 (weights) + 2 (gradients)
    /// + 4 (fp32 master) + 4 + 4 (two moments).</summary>
    public const int AdamBytesPerParameter = 16;

    /// <summary>K and V for one token in every layer: 2·layers·kv_heads·head_dim values.</summary>
    public static long KvCacheBytesPerToken(ModelSpec spec, DataType dtype)
    {
        SpecValidator.EnsureValid(spec);
        return dtype.BytesFor(2L * spec.Layers * spec.KeyValueDim);
    }

    /// <summary>KV cache for <paramref name="tokens"/> cached tokens (e.g. batch × context).</summary>
    public static long KvCacheBytes(ModelSpec spec, long tokens, DataType dtype)
    {
        SpecValidator.EnsureValid(spec);
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        return dtype.BytesFor(checked(2L * spec.Layers * spec.KeyValueDim * tokens));
    }

    public static long WeightBytes(ModelSpec spec, DataType dtype) =>
        dtype.BytesFor(ParameterBreakdown.Of(spec).Total);

    /// <summary>Weights, gradients and Adam state in mixed precision: 16 bytes per parameter.</summary>
    public static long TrainingStateBytes(ModelSpec spec) =>
        AdamBytesPerParameter * ParameterBreakdown.Of(spec).Total;

    /// <summary>
    /// Activation bytes one layer keeps for backward, per micro-batch of <paramref name="microBatch"/>
    /// sequences of <paramref name="sequenceLength"/> tokens, 16-bit, no tensor or sequence parallelism
    /// (Korthikanti et al. 2022, arXiv 2205.05198). The formula assumes MHA and a 4·h FFN; it is used as published.
    /// </summary>
    public static long ActivationBytesPerLayer(ModelSpec spec, int sequenceLength, int microBatch, Recomputation recomputation)
    {
        SpecValidator.EnsureValid(spec);
        if (sequenceLength < 1)
            throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, "Sequence length must be at least 1.");
        if (microBatch < 1)
            throw new ArgumentOutOfRangeException(nameof(microBatch), microBatch, "Micro-batch size must be at least 1.");
        long s = sequenceLength, b = microBatch, h = spec.HiddenSize, a = spec.AttentionHeads;
        return recomputation switch
        {
            // s·b·h·(34 + 5·a·s/h) = 34·s·b·h + 5·a·s²·b, exact in integers.
            Recomputation.None => checked(34 * s * b * h + 5 * a * s * s * b),
            Recomputation.Selective => checked(34 * s * b * h),
            Recomputation.Full => checked(2 * s * b * h),
            _ => throw new ArgumentOutOfRangeException(nameof(recomputation), recomputation, "Use None, Selective or Full."),
        };
    }
}
