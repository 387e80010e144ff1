namespace Explorer.Core.Specs;

/// <summary>
/// Explorer's own small models: the depths and attention structure of DeepSeek LLM 7B and 67B at a width this
/// machine runs interactively. The 67B-mini is twice as wide as the 7B-mini, with 8:1 grouped-query attention,
/// as the 67B is to the 7B; both keep the FFN at 2.6875·d and a head_dim shared by both (32 here, 128 there).
/// </summary>
public static class MiniPresets
{
    /// <summary>Vocabulary of the byte-level BPE tokenizer that ships with the app.</summary>
    public const int Vocabulary = 4096;

    public static readonly ModelSpec DeepSeek7BMini = new(
        "deepseek-7b-mini", Layers: 30, HiddenSize: 256, IntermediateSize: 688,
        AttentionHeads: 8, KeyValueHeads: 8, VocabularySize: Vocabulary, ContextLength: 1024);

    public static readonly ModelSpec DeepSeek67BMini = new(
        "deepseek-67b-mini", Layers: 95, HiddenSize: 512, IntermediateSize: 1376,
        AttentionHeads: 16, KeyValueHeads: 2, VocabularySize: Vocabulary, ContextLength: 1024);

    public static IReadOnlyList<ModelSpec> All { get; } = [DeepSeek7BMini, DeepSeek67BMini];

    public static bool TryGet(string name, out ModelSpec spec)
    {
        spec = All.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))!;
        return spec is not null;
    }
}
