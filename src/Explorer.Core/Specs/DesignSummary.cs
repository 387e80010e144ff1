namespace Explorer.Core.Specs;

/// <summary>What sets a spec's design apart, in the words of the field, for a list of models or a comparison
/// table.</summary>
public static class DesignSummary
{
    /// <summary>The family's name as people say it.</summary>
    public static string FamilyName(ModelFamily family) =>
        family switch
        {
            ModelFamily.Llama => "LLaMA",
            ModelFamily.Mistral => "Mistral",
            ModelFamily.Qwen2 => "Qwen2",
            ModelFamily.Qwen3 => "Qwen3",
            ModelFamily.Gemma => "Gemma",
            ModelFamily.Phi3 => "Phi-3",
            ModelFamily.Olmo2 => "OLMo 2",
            _ => family.ToString(),
        };

    /// <summary>
    /// The features that differ from the plain LLaMA design, e.g. "q/k/v biases · window 4096 from layer 28" or
    /// "llama3 rope ×8"; "plain LLaMA design" when none do.
    /// </summary>
    public static string Features(ModelSpec spec)
    {
        var parts = new List<string>();
        if (spec.HeadDimension is { } hd)
            parts.Add($"head_dim {hd}");
        if (spec.FfnKind == FfnKind.Gelu || spec.Activation != Activation.Silu)
            parts.Add(spec.FfnName + (spec.Activation == Activation.GeluTanh ? " (tanh)" : ""));
        if (spec.NormPlacement == NormPlacement.Post)
            parts.Add("post-norm");
        if (spec.NormPlacement == NormPlacement.BranchOutput)
            parts.Add("norms on branch outputs");
        if (spec.NormScale == NormScale.OnePlusWeight)
            parts.Add("RMSNorm (1 + w)");
        if (spec.QkNorm != QkNorm.None)
            parts.Add(spec.QkNorm == QkNorm.PerHead ? "q/k norm per head" : "q/k norm across heads");
        if (spec.AttentionBias != AttentionBias.None)
            parts.Add(spec.AttentionBias == AttentionBias.QueryKeyValue ? "q/k/v biases" : "attention biases");
        if (spec.MlpBias)
            parts.Add("MLP biases");
        if (spec.FusedProjections)
            parts.Add("fused qkv and gate_up");
        if (spec.ScaleEmbedding)
            parts.Add("embeddings × √d");
        if (spec.RopeScaling is { } r)
            parts.Add($"{r.Kind.ToString().ToLowerInvariant()} rope ×{r.Factor:0.##}");
        if (spec.SlidingWindow is { } w)
            parts.Add(
                spec.FirstSlidingLayer > 0 ? $"window {w:N0} from layer {spec.FirstSlidingLayer}" : $"window {w:N0}"
            );
        if (spec.TiedEmbeddings)
            parts.Add("tied head");
        return parts.Count == 0 ? "plain LLaMA design" : string.Join(" · ", parts);
    }

    /// <summary>"Qwen2: 28 layers, d = 3584, 28/4 heads, vocab 152,064; q/k/v biases · window 4,096 from layer
    /// 28".</summary>
    public static string Line(ModelSpec spec) =>
        $"{FamilyName(spec.Family)}: {spec.Layers} layers, d = {spec.HiddenSize}, "
        + $"{spec.AttentionHeads}/{spec.KeyValueHeads} heads, "
        + $"vocab {spec.VocabularySize:N0}; {Features(spec)}";
}
