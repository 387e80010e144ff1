namespace Explorer.Core.Specs;

/// <summary>Published configurations (Hugging Face config.json of each release).</summary>
public static class ModelPresets
{
    /// <summary>deepseek-ai/deepseek-llm-7b-base.</summary>
    public static readonly ModelSpec DeepSeekLlm7B = new(
        "deepseek-llm-7b", Layers: 30, HiddenSize: 4096, IntermediateSize: 11008,
        AttentionHeads: 32, KeyValueHeads: 32, VocabularySize: 102400, ContextLength: 4096,
        RopeTheta: 10000, NormEpsilon: 1e-6);

    /// <summary>deepseek-ai/deepseek-llm-67b-base.</summary>
    public static readonly ModelSpec DeepSeekLlm67B = new(
        "deepseek-llm-67b", Layers: 95, HiddenSize: 8192, IntermediateSize: 22016,
        AttentionHeads: 64, KeyValueHeads: 8, VocabularySize: 102400, ContextLength: 4096,
        RopeTheta: 10000, NormEpsilon: 1e-6);

    /// <summary>meta-llama/Llama-2-7b-hf.</summary>
    public static readonly ModelSpec Llama2_7B = new(
        "llama-2-7b", Layers: 32, HiddenSize: 4096, IntermediateSize: 11008,
        AttentionHeads: 32, KeyValueHeads: 32, VocabularySize: 32000, ContextLength: 4096,
        RopeTheta: 10000, NormEpsilon: 1e-5);

    /// <summary>meta-llama/Llama-2-70b-hf.</summary>
    public static readonly ModelSpec Llama2_70B = new(
        "llama-2-70b", Layers: 80, HiddenSize: 8192, IntermediateSize: 28672,
        AttentionHeads: 64, KeyValueHeads: 8, VocabularySize: 32000, ContextLength: 4096,
        RopeTheta: 10000, NormEpsilon: 1e-5);

    /// <summary>All presets, in the order a picker shows them.</summary>
    public static IReadOnlyList<ModelSpec> All { get; } = [DeepSeekLlm7B, DeepSeekLlm67B, Llama2_7B, Llama2_70B];

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
                $"Unknown model '{name}'. Known models: {string.Join(", ", Names)}.", nameof(name));
}
