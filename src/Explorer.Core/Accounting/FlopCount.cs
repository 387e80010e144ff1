using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>
/// Forward FLOPs per token of a sequence of <see cref="SequenceLength"/> tokens, counting 2 FLOPs per
/// multiply-add in every matmul and the two attention products (QKᵀ and AV) under a causal mask:
/// query i attends to i keys, so a layer's attention costs 2·d·(s+1) per token on average.
/// Norms, softmax, rotary and activations are elementwise and left out, as every published count does.
/// </summary>
public sealed record FlopCount(int SequenceLength, long LayerMatmul, long LayerAttention, int Layers, long LmHead)
{
    public long PerLayer => LayerMatmul + LayerAttention;
    public long AllLayers => PerLayer * Layers;

    /// <summary>Forward FLOPs per token (the embedding is a lookup and costs none).</summary>
    public long ForwardPerToken => AllLayers + LmHead;

    /// <summary>Forward plus backward (twice the forward: input and weight gradients).</summary>
    public long TrainingPerToken => 3 * ForwardPerToken;

    public static FlopCount Of(ModelSpec spec, int sequenceLength)
    {
        var p = ParameterBreakdown.Of(spec);
        CheckSequence(sequenceLength);
        long d = spec.HiddenSize,
            s = sequenceLength;
        return new FlopCount(
            sequenceLength,
            LayerMatmul: 2 * p.PerLayer.Matmul,
            LayerAttention: 2 * (long)spec.QueryDim * (s + 1),
            Layers: spec.Layers,
            LmHead: 2 * (long)spec.VocabularySize * d
        );
    }

    /// <summary>
    /// DeepSeek LLM's non-embedding training compute per token (arXiv 2401.02954, §3):
    /// M = 72·n_layer·d² + 12·n_layer·d·l_seq. It assumes MHA and an FFN of 8/3·d (SwiGLU).
    /// </summary>
    public static long DeepSeekM(ModelSpec spec, int sequenceLength)
    {
        SpecValidator.EnsureValid(spec);
        CheckSequence(sequenceLength);
        long n = spec.Layers,
            d = spec.HiddenSize,
            l = sequenceLength;
        return 72 * n * d * d + 12 * n * d * l;
    }

    /// <summary>
    /// The same quantity as <see cref="DeepSeekM"/>, under the same conventions (training = 3× forward,
    /// attention over the full l_seq, no embedding or LM head), but from the real matrix shapes:
    /// 3·n_layer·(2·matmul parameters + 4·heads·head_dim·l_seq, which is 4·d·l_seq unless head_dim is decoupled). It
    /// differs from M where KV heads are shared (GQA) or the FFN is not 8/3·d.
    /// </summary>
    public static long ExactM(ModelSpec spec, int sequenceLength)
    {
        var p = ParameterBreakdown.Of(spec);
        CheckSequence(sequenceLength);
        long l = sequenceLength;
        return 3 * spec.Layers * (2 * p.PerLayer.Matmul + 4 * (long)spec.QueryDim * l);
    }

    private static void CheckSequence(int sequenceLength)
    {
        if (sequenceLength is < 1 or > SpecValidator.MaxContextLength)
            throw new ArgumentOutOfRangeException(
                nameof(sequenceLength),
                sequenceLength,
                $"Sequence length {sequenceLength} is out of range: it must be between 1 and "
                    + $"{SpecValidator.MaxContextLength:N0}."
            );
    }
}
