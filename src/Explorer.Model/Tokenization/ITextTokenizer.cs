namespace Explorer.Model.Tokenization;

/// <summary>Text to token ids and back, plus each token's raw bytes for display.</summary>
public interface ITextTokenizer : IDisposable
{
    string Name { get; }
    int VocabularySize { get; }
    IReadOnlyList<int> Encode(string text);
    string Decode(IReadOnlyList<int> ids);

    /// <summary>The bytes a token stands for (byte-level BPE markers resolved); empty for special tokens.</summary>
    byte[] TokenBytes(int id);

    /// <summary>The token's name in the vocabulary, as the tokenizer file spells it (e.g. "Ġthe",
    /// "&lt;|endoftext|&gt;").</summary>
    string TokenName(int id);
}
