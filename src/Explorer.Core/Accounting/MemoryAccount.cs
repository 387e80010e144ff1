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

    public static long WeightBytes(ModelSpec spec, DataType dtype) => dtype.BytesFor(ParameterBreakdown.Of(spec).Total);

    /// <summary>Weights, gradients and Adam state in mixed precision: 16 bytes per parameter.</summary>
    public static long TrainingStateBytes(ModelSpec spec) => AdamBytesPerParameter * ParameterBreakdown.Of(spec).Total;

    /// <summary>
    /// Activation bytes one layer keeps for backward, per micro-batch of <paramref name="microBatch"/>
    /// sequences of <paramref name="sequenceLength"/> tokens, 16-bit, no tensor or sequence parallelism
    /// (Korthikanti et al. 2022, arXiv 2205.05198). The formula assumes MHA and a 4·h FFN; it is used as published.
    /// </summary>
    public static long ActivationBytesPerLayer(
        ModelSpec spec,
        int sequenceLength,
        int microBatch,
        Recomputation recomputation
    )
    {
        SpecValidator.EnsureValid(spec);
        if (sequenceLength < 1)
            throw new ArgumentOutOfRangeException(
                nameof(sequenceLength),
                sequenceLength,
                "Sequence length must be at least 1."
            );
        if (microBatch < 1)
            throw new ArgumentOutOfRangeException(
                nameof(microBatch),
                microBatch,
                "Micro-batch size must be at least 1."
            );
        if (!Enum.IsDefined(recomputation))
            throw new ArgumentOutOfRangeException(nameof(recomputation), recomputation, "Use None, Selective or Full.");
        // Without tensor or context parallelism every term is an integer product well under 2^53: exact.
        return checked((long)LayerActivationBytes(spec, sequenceLength, microBatch, recomputation).Kept);
    }

    /// <summary>
    /// The one activation formula (Korthikanti et al. 2022, arXiv 2205.05198, Table 2), bytes per layer per
    /// micro-batch on one GPU of a t-way tensor-parallel and c-way context-parallel group: what the layer keeps for
    /// its backward under <paramref name="recomputation"/>, and everything its forward makes (what a fully recomputed
    /// layer holds again while its backward runs). A GPU keeps the activations of its s/c tokens, and their attention
    /// scores span all s keys: 34·s·b·h + 5·a·s²·b at t = 1; with t, the attention core and the 24·s·b·h inside
    /// the tensor-parallel GEMMs split t ways and 10·s·b·h of layer norms, dropout and residuals do not, unless
    /// sequence parallelism splits those too. With <paramref name="flashAttention"/> (a fused attention kernel) no
    /// scores are kept, only the softmax's fp32 row statistics: 4·a·s·b in place of 5·a·s²·b.
    /// </summary>
    public static (double Kept, double Everything) LayerActivationBytes(
        ModelSpec spec,
        int sequenceLength,
        int microBatch,
        Recomputation recomputation,
        int tensor = 1,
        bool sequenceParallel = false,
        int context = 1,
        bool flashAttention = false
    )
    {
        double s = sequenceLength,
            b = microBatch,
            h = spec.HiddenSize,
            a = spec.AttentionHeads;
        var sbh = s / context * b * h;
        var scores = flashAttention ? 4 * a * (s / context) * b : 5 * a * (s / context) * s * b;
        var everything =
            tensor == 1 ? 34 * sbh + scores
            : sequenceParallel ? (34 * sbh + scores) / tensor
            : 10 * sbh + (24 * sbh + scores) / tensor;
        var kept = recomputation switch
        {
            Recomputation.Full => 2 * sbh / (sequenceParallel ? tensor : 1),
            Recomputation.Selective => sequenceParallel || tensor == 1
                ? 34 * sbh / tensor
                : 10 * sbh + 24 * sbh / tensor,
            _ => everything,
        };
        return (kept, everything);
    }
}
