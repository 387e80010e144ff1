namespace Explorer.Core.Specs;

/// <summary>Published configurations (Hugging Face config.json of each release).</summary>
public static class ModelPresets
{
    /// <summary>deepseek-ai/deepseek-llm-7b-base.</summary>
    public static readonly ModelSpec DeepSeekLlm7B = new(
        "deepseek-llm-7b",
        Layers: 30,
        HiddenSize: 4096,
        IntermediateSize: 11008,
        AttentionHeads: 32,
        KeyValueHeads: 32,
        VocabularySize: 102400,
        ContextLength: 4096,
        RopeTheta: 10000,
        NormEpsilon: 1e-6
    );

    /// <summary>deepseek-ai/deepseek-llm-67b-base.</summary>
    public static readonly ModelSpec DeepSeekLlm67B = new(
        "deepseek-llm-67b",
        Layers: 95,
        HiddenSize: 8192,
        IntermediateSize: 22016,
        AttentionHeads: 64,
        KeyValueHeads: 8,
        VocabularySize: 102400,
        ContextLength: 4096,
        RopeTheta: 10000,
        NormEpsilon: 1e-6
    );

    /// <summary>meta-llama/Llama-2-7b-hf.</summary>
    public static readonly ModelSpec Llama2_7B = new(
        "llama-2-7b",
        Layers: 32,
        HiddenSize: 4096,
        IntermediateSize: 11008,
        AttentionHeads: 32,
        KeyValueHeads: 32,
        VocabularySize: 32000,
        ContextLength: 4096,
        RopeTheta: 10000,
        NormEpsilon: 1e-5
    );

    /// <summary>meta-llama/Llama-2-70b-hf.</summary>
    public static readonly ModelSpec Llama2_70B = new(
        "llama-2-70b",
        Layers: 80,
        HiddenSize: 8192,
        IntermediateSize: 28672,
        AttentionHeads: 64,
        KeyValueHeads: 8,
        VocabularySize: 32000,
        ContextLength: 4096,
        RopeTheta: 10000,
        NormEpsilon: 1e-5
    );

    private static readonly RopeScaling Llama31Rope = new(
        RopeScalingKind.Llama3,
        Factor: 8,
        LowFrequencyFactor: 1,
        HighFrequencyFactor: 4,
        OriginalContext: 8192
    );

    /// <summary>meta-llama/Llama-3.1-8B.</summary>
    public static readonly ModelSpec Llama31_8B = new(
        "llama-3.1-8b",
        Layers: 32,
        HiddenSize: 4096,
        IntermediateSize: 14336,
        AttentionHeads: 32,
        KeyValueHeads: 8,
        VocabularySize: 128256,
        ContextLength: 131072,
        RopeTheta: 500000,
        NormEpsilon: 1e-5,
        RopeScaling: Llama31Rope
    );

    /// <summary>meta-llama/Llama-3.1-70B.</summary>
    public static readonly ModelSpec Llama31_70B = new(
        "llama-3.1-70b",
        Layers: 80,
        HiddenSize: 8192,
        IntermediateSize: 28672,
        AttentionHeads: 64,
        KeyValueHeads: 8,
        VocabularySize: 128256,
        ContextLength: 131072,
        RopeTheta: 500000,
        NormEpsilon: 1e-5,
        RopeScaling: Llama31Rope
    );

    /// <summary>meta-llama/Llama-3.1-405B.</summary>
    public static readonly ModelSpec Llama31_405B = new(
        "llama-3.1-405b",
        Layers: 126,
        HiddenSize: 16384,
        IntermediateSize: 53248,
        AttentionHeads: 128,
        KeyValueHeads: 8,
        VocabularySize: 128256,
        ContextLength: 131072,
        RopeTheta: 500000,
        NormEpsilon: 1e-5,
        RopeScaling: Llama31Rope
    );

    /// <summary>Qwen/Qwen2.5-7B (use_sliding_window false: full attention everywhere).</summary>
    public static readonly ModelSpec Qwen25_7B = new(
        "qwen2.5-7b",
        Layers: 28,
        HiddenSize: 3584,
        IntermediateSize: 18944,
        AttentionHeads: 28,
        KeyValueHeads: 4,
        VocabularySize: 152064,
        ContextLength: 131072,
        RopeTheta: 1000000,
        NormEpsilon: 1e-6,
        Family: ModelFamily.Qwen2,
        AttentionBias: AttentionBias.QueryKeyValue
    );

    /// <summary>Qwen/Qwen2.5-72B.</summary>
    public static readonly ModelSpec Qwen25_72B = new(
        "qwen2.5-72b",
        Layers: 80,
        HiddenSize: 8192,
        IntermediateSize: 29568,
        AttentionHeads: 64,
        KeyValueHeads: 8,
        VocabularySize: 152064,
        ContextLength: 131072,
        RopeTheta: 1000000,
        NormEpsilon: 1e-5,
        Family: ModelFamily.Qwen2,
        AttentionBias: AttentionBias.QueryKeyValue
    );

    /// <summary>mistralai/Mistral-7B-v0.1 (sliding window 4096).</summary>
    public static readonly ModelSpec Mistral7B = new(
        "mistral-7b",
        Layers: 32,
        HiddenSize: 4096,
        IntermediateSize: 14336,
        AttentionHeads: 32,
        KeyValueHeads: 8,
        VocabularySize: 32000,
        ContextLength: 32768,
        RopeTheta: 10000,
        NormEpsilon: 1e-5,
        Family: ModelFamily.Mistral,
        SlidingWindow: 4096
    );

    /// <summary>google/gemma-7b (head_dim 256 over d = 3072, GeGLU, tied head).</summary>
    public static readonly ModelSpec Gemma7B = new(
        "gemma-7b",
        Layers: 28,
        HiddenSize: 3072,
        IntermediateSize: 24576,
        AttentionHeads: 16,
        KeyValueHeads: 16,
        VocabularySize: 256000,
        ContextLength: 8192,
        RopeTheta: 10000,
        NormEpsilon: 1e-6,
        TiedEmbeddings: true,
        Family: ModelFamily.Gemma,
        HeadDimension: 256,
        Activation: Activation.GeluTanh,
        NormScale: NormScale.OnePlusWeight,
        ScaleEmbedding: true
    );

    /// <summary>microsoft/Phi-3-mini-4k-instruct (fused projections, sliding window 2047).</summary>
    public static readonly ModelSpec Phi3Mini = new(
        "phi-3-mini",
        Layers: 32,
        HiddenSize: 3072,
        IntermediateSize: 8192,
        AttentionHeads: 32,
        KeyValueHeads: 32,
        VocabularySize: 32064,
        ContextLength: 4096,
        RopeTheta: 10000,
        NormEpsilon: 1e-5,
        Family: ModelFamily.Phi3,
        SlidingWindow: 2047
    );

    /// <summary>Qwen/Qwen3-8B (q/k norm per head; its head_dim 128 is d / heads here).</summary>
    public static readonly ModelSpec Qwen3_8B = new(
        "qwen3-8b",
        Layers: 36,
        HiddenSize: 4096,
        IntermediateSize: 12288,
        AttentionHeads: 32,
        KeyValueHeads: 8,
        VocabularySize: 151936,
        ContextLength: 40960,
        RopeTheta: 1000000,
        NormEpsilon: 1e-6,
        Family: ModelFamily.Qwen3,
        QkNorm: QkNorm.PerHead
    );

    /// <summary>allenai/OLMo-2-1124-7B (norms on the branch outputs, q/k norm across heads).</summary>
    public static readonly ModelSpec Olmo2_7B = new(
        "olmo-2-7b",
        Layers: 32,
        HiddenSize: 4096,
        IntermediateSize: 11008,
        AttentionHeads: 32,
        KeyValueHeads: 32,
        VocabularySize: 100352,
        ContextLength: 4096,
        RopeTheta: 500000,
        NormEpsilon: 1e-6,
        NormPlacement: NormPlacement.BranchOutput,
        Family: ModelFamily.Olmo2,
        NormScale: NormScale.WeightInFloat32,
        QkNorm: QkNorm.AcrossHeads
    );

    /// <summary>All presets, in the order a picker shows them.</summary>
    public static IReadOnlyList<ModelSpec> All { get; } =
    [
        DeepSeekLlm7B,
        DeepSeekLlm67B,
        Llama2_7B,
        Llama2_70B,
        Llama31_8B,
        Llama31_70B,
        Llama31_405B,
        Qwen25_7B,
        Qwen25_72B,
        Mistral7B,
        Gemma7B,
        Phi3Mini,
        Qwen3_8B,
        Olmo2_7B,
    ];

    /// <summary>The preset names, for messages and pickers.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(s => s.Name).ToArray();

    /// <summary>Finds a preset by name (case-insensitive).</summary>
    public static bool TryGet(string name, out ModelSpec spec)
    {
        spec = All.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))!;
        return spec is not null;
    }

    /// <summary>Finds a preset by name or throws an error that lists the known names.</summary>
    public static ModelSpec Get(string name) =>
        TryGet(name, out var spec)
            ? spec
            : throw new ArgumentException(
                $"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.",
                nameof(name)
            );
}
