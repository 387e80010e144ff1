using System.Text;
using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Tests;

public class MiniTokenizerTests
{
    private static readonly MiniTokenizer Tokenizer = MiniTokenizer.Create();

    [Theory]
    [InlineData("The residual stream grows with depth.")]
    [InlineData("héllo wörld, 世界! 🙂\n\ttabs")]
    [InlineData("")]
    public void RoundTripsText(string text)
    {
        var ids = Tokenizer.Encode(text);
        Assert.All(ids, id => Assert.InRange(id, 0, MiniPresets.Vocabulary - 1));
        Assert.Equal(text, Tokenizer.Decode(ids));
        // Every token's bytes, concatenated, are the text's UTF-8 bytes.
        Assert.Equal(Encoding.UTF8.GetBytes(text), ids.SelectMany(Tokenizer.TokenBytes).ToArray());
    }

    [Fact]
    public void VocabularyIsTheMiniModelsAndEndOfTextIsSpecial()
    {
        Assert.Equal(MiniPresets.Vocabulary, Tokenizer.VocabularySize);
        Assert.Equal([MiniTokenizer.BpeRanks], Tokenizer.Encode(MiniTokenizer.EndOfText));
        Assert.Empty(Tokenizer.TokenBytes(MiniTokenizer.BpeRanks));
        // Common English words are single tokens even in 4k merges.
        Assert.Single(Tokenizer.Encode(" the"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.TokenBytes(MiniPresets.Vocabulary));
    }

    [Fact]
    public void PiecesAreReadable()
    {
        var ids = Tokenizer.Encode("Hello world");
        var pieces = TokenPieces.Display(Tokenizer, ids);
        Assert.Equal("Hello␣world", string.Concat(pieces));
    }
}

public class TokenPiecesTests
{
    private static (byte[], string) T(params byte[] b) => (b, "");

    [Fact]
    public void CharacterSplitAcrossTokensShowsWhereItCompletes()
    {
        // "世" is E4 B8 96: split over two tokens, then a plain "a".
        var pieces = TokenPieces.Display([T(0xE4, 0xB8), T(0x96), T((byte)'a')]);
        Assert.Equal(["\\xE4\\xB8", "世", "a"], pieces);
    }

    [Fact]
    public void InvalidBytesAndWhitespaceAreVisible()
    {
        var pieces = TokenPieces.Display([T(0xFF), T((byte)' ', (byte)'x'), T((byte)'\n'), ([], "<|endoftext|>")]);
        Assert.Equal(["\\xFF", "␣x", "↵", "<|endoftext|>"], pieces);
    }

    [Fact]
    public void TrailingPartialCharacterIsShownAsBytes() =>
        Assert.Equal(["a", "\\xE4\\xB8"], TokenPieces.Display([T((byte)'a'), T(0xE4, 0xB8)]));
}

public sealed class HfTokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    // GPT-2's bytes_to_unicode, written out here from its definition.
    internal static string ByteChar(int b)
    {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable)
            return ((char)b).ToString();
        var n = 0;
        for (var i = 0; i < b; i++)
            if (!((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE && i <= 0xFF)))
                n++;
        return ((char)(256 + n)).ToString();
    }

    private string WriteTokenizer()
    {
        var vocab = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++)
            vocab[ByteChar(b)] = b;
        vocab["Ġt"] = 256;
        vocab["Ġth"] = 257;
        vocab["Ġthe"] = 258;
        var json = new
        {
            version = "1.0",
            truncation = (object?)null,
            padding = (object?)null,
            added_tokens = new[]
            {
                new
                {
                    id = 259,
                    content = "<|end|>",
                    single_word = false,
                    lstrip = false,
                    rstrip = false,
                    normalized = false,
                    special = true,
                },
            },
            normalizer = (object?)null,
            pre_tokenizer = new
            {
                type = "ByteLevel",
                add_prefix_space = false,
                trim_offsets = true,
                use_regex = true,
            },
            post_processor = (object?)null,
            decoder = new
            {
                type = "ByteLevel",
                add_prefix_space = true,
                trim_offsets = true,
                use_regex = true,
            },
            model = new
            {
                type = "BPE",
                dropout = (object?)null,
                unk_token = (object?)null,
                continuing_subword_prefix = (object?)null,
                end_of_word_suffix = (object?)null,
                fuse_unk = false,
                byte_fallback = false,
                vocab,
                merges = new[] { "Ġ t", "Ġt h", "Ġth e" },
            },
        };
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    [Fact]
    public void EncodesWithMergesAndDecodes()
    {
        using var tokenizer = HfTokenizer.Load(WriteTokenizer());
        Assert.Equal(260, tokenizer.VocabularySize);
        var ids = tokenizer.Encode("a the");
        Assert.Equal([(int)'a', 258], ids);
        Assert.Equal("a the", tokenizer.Decode(ids));
        Assert.Equal("Ġthe", tokenizer.TokenName(258));
        Assert.Equal(" the"u8.ToArray(), tokenizer.TokenBytes(258));
        Assert.Equal(["a", "␣the"], TokenPieces.Display(tokenizer, ids));
        Assert.Equal("<|end|>", TokenPieces.Display(tokenizer, [259])[0]);
    }

    [Fact]
    public void IdsBeyondTheTokenizerAreShownAsIdsAndTheRestStillReads()
    {
        using var tokenizer = HfTokenizer.Load(WriteTokenizer());
        // A model whose vocabulary is padded past the tokenizer's 260 tokens may predict 102,356.
        Assert.Equal(
            ["a", "<id 102356>", "␣the", "<id 260>"],
            TokenPieces.Display(tokenizer, [(int)'a', 102_356, 258, 260])
        );
        Assert.Equal("<id 102356>", TokenPieces.Display(tokenizer, 102_356));
        Assert.Equal("<id 7>", TokenPieces.Display(null, 7));
        Assert.Equal("␣the", TokenPieces.Display(tokenizer, 258));
    }

    [Fact]
    public void ATokenizerIsReadAgainstTheModelsVocabulary()
    {
        var path = WriteTokenizer();
        using (var fits = HfTokenizer.Load(path, vocabularyLimit: 260))
            Assert.Equal(260, fits.VocabularySize);
        var e = Assert.Throws<ArgumentException>(() => HfTokenizer.Load(path, vocabularyLimit: 259));
        Assert.Contains("added_tokens[0].id is 259", e.Message);
        Assert.Contains("[0, 259)", e.Message);
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void BadFilesAreRejectedClearly()
    {
        var missing = Assert.Throws<ArgumentException>(() => HfTokenizer.Load(Path.Combine(_dir, "nope.json")));
        Assert.Contains("does not exist", missing.Message);
        var bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, "{\"model\": ");
        Assert.Contains("not valid JSON", Assert.Throws<ArgumentException>(() => HfTokenizer.Load(bad)).Message);
        File.WriteAllText(bad, "{\"model\": {\"type\": \"WordPiece\"}}");
        Assert.Contains("no model.vocab", Assert.Throws<ArgumentException>(() => HfTokenizer.Load(bad)).Message);
    }
}
