namespace Explorer.Core.Specs;

/// <summary>Where each block's RMSNorms sit relative to the residual add.</summary>
public enum NormPlacement
{
    /// <summary>x + f(norm(x)): the LLaMA / DeepSeek LLM design (and Mistral, Qwen, Gemma, Phi-3).</summary>
    Pre,

    /// <summary>norm(x + f(x)): the original Transformer; an experimental variant here.</summary>
    Post,

    /// <summary>x + norm(f(x)): each branch's output normed before it joins the residual (OLMo 2).</summary>
    BranchOutput,
}

/// <summary>The feed-forward block of each layer.</summary>
public enum FfnKind
{
    /// <summary>down(act(gate(x)) · up(x)): three matrices, gated (SwiGLU with SiLU, GeGLU with GELU).</summary>
    SwiGlu,

    /// <summary>down(gelu(up(x))): two matrices (GPT-2 style), for comparison.</summary>
    Gelu,
}

/// <summary>The activation of the feed-forward block (transformers' <c>hidden_act</c>).</summary>
public enum Activation
{
    /// <summary>"silu": x·σ(x).</summary>
    Silu,

    /// <summary>"gelu": the exact GELU, x·Φ(x).</summary>
    Gelu,

    /// <summary>"gelu_pytorch_tanh" (also "gelu_new"): the tanh approximation of GELU.</summary>
    GeluTanh,
}

/// <summary>How an RMSNorm applies its weight w to the normalised x̂ (computed in fp32), and where it rounds to the
/// activations' dtype.</summary>
public enum NormScale
{
    /// <summary>w · dtype(x̂): LLaMA, Mistral, Qwen, Phi-3 (the weight multiplies after the cast).</summary>
    Weight,

    /// <summary>dtype(w · x̂): OLMo 2 (the product in fp32, then the cast).</summary>
    WeightInFloat32,

    /// <summary>dtype((1 + w) · x̂): Gemma (weights stored as offsets from one).</summary>
    OnePlusWeight,
}

/// <summary>Which attention projections carry a bias.</summary>
public enum AttentionBias
{
    None,

    /// <summary>q, k and v (Qwen2, Qwen2.5); o has none.</summary>
    QueryKeyValue,

    /// <summary>q, k, v and o (transformers' <c>attention_bias: true</c> on LLaMA, Qwen3, OLMo 2).</summary>
    All,
}

/// <summary>An RMSNorm on the queries and keys before RoPE.</summary>
public enum QkNorm
{
    None,

    /// <summary>Over each head's head_dim values, one weight of head_dim shared by the heads (Qwen3).</summary>
    PerHead,

    /// <summary>Over all heads at once: weights of heads·head_dim and kv_heads·head_dim (OLMo 2).</summary>
    AcrossHeads,
}

/// <summary>How rotary frequencies are rescaled for a longer context (transformers'
/// <c>rope_scaling.rope_type</c>).</summary>
public enum RopeScalingKind
{
    /// <summary>"linear": every inverse frequency divided by the factor.</summary>
    Linear,

    /// <summary>"dynamic" NTK: θ grows with the sequence once it is longer than max_position_embeddings.</summary>
    Dynamic,

    /// <summary>"llama3": low frequencies divided by the factor, high ones kept, a smooth ramp between (Llama
    /// 3.1+).</summary>
    Llama3,
}

/// <summary>A rope_scaling entry. LowFrequencyFactor, HighFrequencyFactor and OriginalContext are used by Llama3
/// only.</summary>
public sealed record RopeScaling(
    RopeScalingKind Kind,
    double Factor,
    double LowFrequencyFactor = 1,
    double HighFrequencyFactor = 4,
    int OriginalContext = 8192
);

/// <summary>
/// The family a checkpoint comes from: its config.json's <c>model_type</c>, which fixes the weight names and what the
/// config's fields mean. Everything that changes the forward is in the spec's own fields; the family adds the layout.
/// </summary>
public enum ModelFamily
{
    /// <summary>LlamaForCausalLM ("llama"): LLaMA 1/2/3, DeepSeek LLM.</summary>
    Llama,

    /// <summary>MistralForCausalLM ("mistral").</summary>
    Mistral,

    /// <summary>Qwen2ForCausalLM ("qwen2"): Qwen2, Qwen2.5.</summary>
    Qwen2,

    /// <summary>Qwen3ForCausalLM ("qwen3").</summary>
    Qwen3,

    /// <summary>GemmaForCausalLM ("gemma"): Gemma 1.</summary>
    Gemma,

    /// <summary>Phi3ForCausalLM ("phi3"): fused qkv_proj and gate_up_proj.</summary>
    Phi3,

    /// <summary>Olmo2ForCausalLM ("olmo2").</summary>
    Olmo2,
}

/// <summary>
/// The macro shape of a decoder and every design choice that changes its forward: the accounting, the decoder and
/// the checkpoint reader all read it. The defaults are the DeepSeek LLM / LLaMA design. A spec is only trusted after
/// <see cref="SpecValidator"/> accepts it.
/// </summary>
/// <param name="HeadDimension">An explicit head_dim (Gemma's 256, Qwen3's 128); null: hidden_size / heads.</param>
/// <param name="SlidingWindow">Keys a query sees in a sliding-window layer, itself included (null: no window).</param>
/// <param name="FirstSlidingLayer">Layers from this index on use the window (Qwen's max_window_layers; 0 for Mistral,
/// Phi-3).</param>
/// <param name="ScaleEmbedding">Embeddings multiplied by √hidden_size, rounded to the activations' dtype
/// (Gemma).</param>
public sealed record ModelSpec(
    string Name,
    int Layers,
    int HiddenSize,
    int IntermediateSize,
    int AttentionHeads,
    int KeyValueHeads,
    int VocabularySize,
    int ContextLength,
    double RopeTheta = 10000,
    double NormEpsilon = 1e-6,
    bool TiedEmbeddings = false,
    NormPlacement NormPlacement = NormPlacement.Pre,
    FfnKind FfnKind = FfnKind.SwiGlu,
    ModelFamily Family = ModelFamily.Llama,
    int? HeadDimension = null,
    Activation Activation = Activation.Silu,
    NormScale NormScale = NormScale.Weight,
    AttentionBias AttentionBias = AttentionBias.None,
    bool MlpBias = false,
    QkNorm QkNorm = QkNorm.None,
    RopeScaling? RopeScaling = null,
    int? SlidingWindow = null,
    int FirstSlidingLayer = 0,
    bool ScaleEmbedding = false
)
{
    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HeadDimension ?? (AttentionHeads > 0 ? HiddenSize / AttentionHeads : 0);

    /// <summary>Width of the query projection (and of o_proj's input): heads × head_dim, hidden_size unless head_dim is
    /// decoupled.</summary>
    public int QueryDim => AttentionHeads * HeadDim;

    /// <summary>Width of the K (or V) projection: KV heads × head_dim.</summary>
    public int KeyValueDim => KeyValueHeads * HeadDim;

    /// <summary>Query heads that share one KV head (1 for MHA, 8 for the 67B).</summary>
    public int QueriesPerKeyValueHead => AttentionHeads / KeyValueHeads;

    /// <summary>True when fewer KV heads than query heads (GQA or MQA).</summary>
    public bool IsGroupedQuery => KeyValueHeads < AttentionHeads;

    /// <summary>"MHA", "GQA 8:1" or "MQA".</summary>
    public string AttentionKind =>
        KeyValueHeads == AttentionHeads ? "MHA"
        : KeyValueHeads == 1 ? "MQA"
        : $"GQA {QueriesPerKeyValueHead}:1";

    /// <summary>Whether layer <paramref name="layer"/> attends within the sliding window.</summary>
    public bool SlidesAt(int layer) => SlidingWindow is not null && layer >= FirstSlidingLayer;

    /// <summary>Phi-3 stores q, k, v as one qkv_proj and gate, up as one gate_up_proj.</summary>
    public bool FusedProjections => Family == ModelFamily.Phi3;

    /// <summary>"SwiGLU", "GeGLU" or "GELU".</summary>
    public string FfnName =>
        FfnKind == FfnKind.Gelu ? "GELU"
        : Activation == Activation.Silu ? "SwiGLU"
        : "GeGLU";

    /// <summary>The family's causal-LM class, as config.json's architectures names it.</summary>
    public string ArchitectureClass =>
        Family switch
        {
            ModelFamily.Mistral => "MistralForCausalLM",
            ModelFamily.Qwen2 => "Qwen2ForCausalLM",
            ModelFamily.Qwen3 => "Qwen3ForCausalLM",
            ModelFamily.Gemma => "GemmaForCausalLM",
            ModelFamily.Phi3 => "Phi3ForCausalLM",
            ModelFamily.Olmo2 => "Olmo2ForCausalLM",
            _ => "LlamaForCausalLM",
        };
}
