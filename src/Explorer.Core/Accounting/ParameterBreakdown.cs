using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>Parameters of one decoder layer, matrix by matrix (Hugging Face names in comments).</summary>
public sealed record LayerParameters(
    long Query,          // self_attn.q_proj  [heads·head_dim, d]
    long Key,            // self_attn.k_proj  [kv_heads·head_dim, d]
    long Value,          // self_attn.v_proj  [kv_heads·head_dim, d]
    long Output,         // self_attn.o_proj  [d, heads·head_dim]
    long Gate,           // mlp.gate_proj     [ffn, d] (SwiGLU only)
    long Up,             // mlp.up_proj       [ffn, d]
    long Down,           // mlp.down_proj     [d, ffn]
    long AttentionNorm,  // input_layernorm   [d]
    long FfnNorm)        // post_attention_layernorm [d]
{
    public long Attention => Query + Key + Value + Output;
    public long Ffn => Gate + Up + Down;
    public long Norms => AttentionNorm + FfnNorm;

    /// <summary>Parameters inside matrix multiplications (each costs 2 FLOPs per token in the forward pass).</summary>
    public long Matmul => Attention + Ffn;
    public long Total => Matmul + Norms;
}

/// <summary>Exact parameter counts of a decoder, by component.</summary>
public sealed record ParameterBreakdown(
    long Embedding, LayerParameters PerLayer, int Layers, long FinalNorm, long LmHead)
{
    public long AllLayers => PerLayer.Total * Layers;

    /// <summary>Everything, counting a tied LM head once.</summary>
    public long Total => Embedding + AllLayers + FinalNorm + LmHead;

    /// <summary>Total without the embedding and LM head matrices (the convention of scaling-law papers).</summary>
    public long NonEmbedding => AllLayers + FinalNorm;

    public static ParameterBreakdown Of(ModelSpec spec)
    {
        SpecValidator.EnsureValid(spec);
        long d = spec.HiddenSize, kv = spec.KeyValueDim, ffn = spec.IntermediateSize, v = spec.VocabularySize;
        var layer = new LayerParameters(
            Query: d * d,
            Key: d * kv,
            Value: d * kv,
            Output: d * d,
            Gate: spec.FfnKind == FfnKind.SwiGlu ? d * ffn : 0,
            Up: d * ffn,
            Down: ffn * d,
            AttentionNorm: d,
            FfnNorm: d);
        return new ParameterBreakdown(
            Embedding: v * d,
            PerLayer: layer,
            Layers: spec.Layers,
            FinalNorm: d,
            LmHead: spec.TiedEmbeddings ? 0 : v * d);
    }
}
