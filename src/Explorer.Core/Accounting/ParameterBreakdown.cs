using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>Parameters of one decoder layer, matrix by matrix (Hugging Face names in comments).</summary>
public sealed record LayerParameters(
    long Query, // self_attn.q_proj  [heads·head_dim, d]
    long Key, // self_attn.k_proj  [kv_heads·head_dim, d]
    long Value, // self_attn.v_proj  [kv_heads·head_dim, d]
    long Output, // self_attn.o_proj  [d, heads·head_dim]
    long Gate, // mlp.gate_proj     [ffn, d] (SwiGLU only)
    long Up, // mlp.up_proj       [ffn, d]
    long Down, // mlp.down_proj     [d, ffn]
    long AttentionNorm, // input_layernorm   [d] (OLMo 2: post_attention_layernorm)
    long FfnNorm, // post_attention_layernorm [d] (OLMo 2: post_feedforward_layernorm)
    // self_attn.q_norm, k_norm: [head_dim] each (Qwen3) or [heads·head_dim], [kv_heads·head_dim] (OLMo 2)
    long QkNorms = 0,
    long Biases = 0
) // biases of q, k, v (Qwen2), of o too (attention_bias), of gate, up, down (mlp_bias)
{
    public long Attention => Query + Key + Value + Output;
    public long Ffn => Gate + Up + Down;
    public long Norms => AttentionNorm + FfnNorm + QkNorms;

    /// <summary>Parameters inside matrix multiplications (each costs 2 FLOPs per token in the forward pass).</summary>
    public long Matmul => Attention + Ffn;
    public long Total => Matmul + Norms + Biases;
}

/// <summary>Exact parameter counts of a decoder, by component.</summary>
public sealed record ParameterBreakdown(
    long Embedding,
    LayerParameters PerLayer,
    int Layers,
    long FinalNorm,
    long LmHead
)
{
    public long AllLayers => PerLayer.Total * Layers;

    /// <summary>Everything, counting a tied LM head once.</summary>
    public long Total => Embedding + AllLayers + FinalNorm + LmHead;

    /// <summary>Total without the embedding and LM head matrices (the convention of scaling-law papers).</summary>
    public long NonEmbedding => AllLayers + FinalNorm;

    public static ParameterBreakdown Of(ModelSpec spec)
    {
        SpecValidator.EnsureValid(spec);
        long d = spec.HiddenSize,
            q = spec.QueryDim,
            kv = spec.KeyValueDim,
            ffn = spec.IntermediateSize,
            v = spec.VocabularySize;
        var gated = spec.FfnKind == FfnKind.SwiGlu;
        long biases =
            spec.AttentionBias switch
            {
                AttentionBias.QueryKeyValue => q + 2 * kv,
                AttentionBias.All => q + 2 * kv + d,
                _ => 0,
            } + (spec.MlpBias ? (gated ? 2 * ffn : ffn) + d : 0);
        var layer = new LayerParameters(
            Query: d * q,
            Key: d * kv,
            Value: d * kv,
            Output: q * d,
            Gate: gated ? d * ffn : 0,
            Up: d * ffn,
            Down: ffn * d,
            AttentionNorm: d,
            FfnNorm: d,
            QkNorms: spec.QkNorm switch
            {
                QkNorm.PerHead => 2L * spec.HeadDim,
                QkNorm.AcrossHeads => q + kv,
                _ => 0,
            },
            Biases: biases
        );
        return new ParameterBreakdown(
            Embedding: v * d,
            PerLayer: layer,
            Layers: spec.Layers,
            FinalNorm: d,
            LmHead: spec.TiedEmbeddings ? 0 : v * d
        );
    }
}
