namespace Explorer.Core.Specs;

/// <summary>
/// Explorer's own small models: the depths and attention structure of DeepSeek LLM 7B and 67B at a width this
/// machine runs interactively (measured with <c>explorer bench</c>: at d = 512 the 95-layer mini took 0.5 s per
/// 128-token forward, at d = 256 a quarter of that). Both are 256 wide with the FFN at 2.6875·d, as both DeepSeek
/// models have FFN/d = 2.6875; the 67B-mini has twice the 7B-mini's heads, 8:1 grouped-query attention in two
/// KV groups, as the 67B has twice the 7B's heads and 8:1 GQA.
/// </summary>
public static class MiniPresets
{
    /// <summary>Vocabulary of the byte-level BPE tokenizer that ships with the app.</summary>
    public const int Vocabulary = 4096;

    public static readonly ModelSpec DeepSeek7BMini = new(
        "deepseek-7b-mini", Layers: 30, HiddenSize: 256, IntermediateSize: 688,
        AttentionHeads: 8, KeyValueHeads: 8, VocabularySize: Vocabulary, ContextLength: 1024);

    public static readonly ModelSpec DeepSeek67BMini = new(
        "deepseek-67b-mini", Layers: 95, HiddenSize: 256, IntermediateSize: 688,
        AttentionHeads: 16, KeyValueHeads: 2, VocabularySize: Vocabulary, ContextLength: 1024);

    public static IReadOnlyList<ModelSpec> All { get; } = [DeepSeek7BMini, DeepSeek67BMini];

    public static bool TryGet(string name, out ModelSpec spec)
    {
        spec = All.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))!;
        return spec is not null;
    }
}
