namespace Explorer.Core.Specs;

/// <summary>Where each block's RMSNorm sits relative to the residual add.</summary>
public enum NormPlacement
{
    /// <summary>x + f(norm(x)): the LLaMA / DeepSeek LLM design.</summary>
    Pre,
    /// <summary>norm(x + f(x)): the original Transformer; an experimental variant here.</summary>
    Post,
}

/// <summary>The feed-forward block of each layer.</summary>
public enum FfnKind
{
    /// <summary>down(silu(gate(x)) * up(x)): three matrices (LLaMA, DeepSeek LLM).</summary>
    SwiGlu,
    /// <summary>down(gelu(up(x))): two matrices (GPT-2 style), for comparison.</summary>
    Gelu,
}

/// <summary>
/// The macro shape of a LLaMA-family decoder: everything the accounting needs.
/// A spec is only trusted after <see cref="SpecValidator"/> accepts it.
/// </summary>
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
    FfnKind FfnKind = FfnKind.SwiGlu)
{
    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / AttentionHeads;

    /// <summary>Width of the K (or V) projection: KV heads × head_dim.</summary>
    public int KeyValueDim => KeyValueHeads * HeadDim;

    /// <summary>Query heads that share one KV head (1 for MHA, 8 for the 67B).</summary>
    public int QueriesPerKeyValueHead => AttentionHeads / KeyValueHeads;

    /// <summary>True when fewer KV heads than query heads (GQA or MQA).</summary>
    public bool IsGroupedQuery => KeyValueHeads < AttentionHeads;

    /// <summary>"MHA", "GQA 8:1" or "MQA".</summary>
    public string AttentionKind => KeyValueHeads == AttentionHeads ? "MHA"
        : KeyValueHeads == 1 ? "MQA"
        : $"GQA {QueriesPerKeyValueHead}:1";
}
