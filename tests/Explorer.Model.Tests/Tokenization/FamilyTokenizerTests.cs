using System.Text.Json;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Tests;

/// <summary>
/// Small tokenizer.json files in the styles the families ship, run by the tokenizers library: Llama 3's and Qwen's
/// byte-level BPE behind a regex split (Llama 3 adding its begin-of-text token), and the SentencePiece-derived BPE of
/// Gemma and Phi-3 (▁ for a space, byte fallback for what the vocabulary lacks). The chips show their pieces.
/// </summary>
public sealed class FamilyTokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-family-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    // Llama 3's pre-tokenizer split pattern (tokenizer.json of Meta-Llama-3-8B); Qwen2's differs only in splitting
    // digits one by one.
    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
        + @"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private string Write(object json)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllText(path, JsonSerializer.Serialize(json));
        return path;
    }

    private string Llama3Style(bool bos)
    {
        var vocab = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++)
            vocab[HfTokenizerTests.ByteChar(b)] = b;
        vocab["Ġt"] = 256;
        vocab["Ġth"] = 257;
        vocab["Ġthe"] = 258;
        vocab["12"] = 259;
        return Write(
            new
            {
                version = "1.0",
                added_tokens = new[]
                {
                    new
                    {
                        id = 260,
                        content = "<|begin_of_text|>",
                        single_word = false,
                        lstrip = false,
                        rstrip = false,
                        normalized = false,
                        special = true,
                    },
                    new
                    {
                        id = 261,
                        content = "<|end_of_text|>",
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
                    type = "Sequence",
                    pretokenizers = new object[]
                    {
                        new
                        {
                            type = "Split",
                            pattern = new { Regex = Llama3Pattern },
                            behavior = "Isolated",
                            invert = false,
                        },
                        new
                        {
                            type = "ByteLevel",
                            add_prefix_space = false,
                            trim_offsets = true,
                            use_regex = false,
                        },
                    },
                },
                post_processor = bos
                    ? new
                    {
                        type = "TemplateProcessing",
                        single = new object[]
                        {
                            new { SpecialToken = new { id = "<|begin_of_text|>", type_id = 0 } },
                            new { Sequence = new { id = "A", type_id = 0 } },
                        },
                        pair = new object[]
                        {
                            new { SpecialToken = new { id = "<|begin_of_text|>", type_id = 0 } },
                            new { Sequence = new { id = "A", type_id = 0 } },
                            new { Sequence = new { id = "B", type_id = 1 } },
                        },
                        special_tokens = new Dictionary<string, object>
                        {
                            ["<|begin_of_text|>"] = new
                            {
                                id = "<|begin_of_text|>",
                                ids = new[] { 260 },
                                tokens = new[] { "<|begin_of_text|>" },
                            },
                        },
                    }
                    : (object?)null,
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
                    ignore_merges = true,
                    vocab,
                    merges = new[] { "Ġ t", "Ġt h", "Ġth e", "1 2" },
                },
            }
        );
    }

    private string SentencePieceStyle(bool prependSpace)
    {
        var vocab = new Dictionary<string, int>
        {
            ["<unk>"] = 0,
            ["<s>"] = 1,
            ["</s>"] = 2,
        };
        for (var b = 0; b < 256; b++)
            vocab[$"<0x{b:X2}>"] = 3 + b;
        foreach (var piece in new[] { "▁", "a", "t", "h", "e", "▁t", "▁th", "▁the", "▁a" })
            vocab[piece] = vocab.Count;
        return Write(
            new
            {
                version = "1.0",
                added_tokens = new[]
                {
                    new
                    {
                        id = 0,
                        content = "<unk>",
                        single_word = false,
                        lstrip = false,
                        rstrip = false,
                        normalized = false,
                        special = true,
                    },
                    new
                    {
                        id = 1,
                        content = "<s>",
                        single_word = false,
                        lstrip = false,
                        rstrip = false,
                        normalized = false,
                        special = true,
                    },
                    new
                    {
                        id = 2,
                        content = "</s>",
                        single_word = false,
                        lstrip = false,
                        rstrip = false,
                        normalized = false,
                        special = true,
                    },
                },
                // Phi-3 (Llama 2's tokenizer): a ▁ prepended, then spaces replaced; Gemma: spaces replaced only.
                normalizer = prependSpace
                    ? new
                    {
                        type = "Sequence",
                        normalizers = new object[]
                        {
                            new { type = "Prepend", prepend = "▁" },
                            new
                            {
                                type = "Replace",
                                pattern = new { String = " " },
                                content = "▁",
                            },
                        },
                    }
                    : (object)
                        new
                        {
                            type = "Replace",
                            pattern = new { String = " " },
                            content = "▁",
                        },
                pre_tokenizer = (object?)null,
                post_processor = (object?)null,
                decoder = new
                {
                    type = "Sequence",
                    decoders = new object[]
                    {
                        new
                        {
                            type = "Replace",
                            pattern = new { String = "▁" },
                            content = " ",
                        },
                        new { type = "ByteFallback" },
                        new { type = "Fuse" },
                    },
                },
                model = new
                {
                    type = "BPE",
                    dropout = (object?)null,
                    unk_token = "<unk>",
                    continuing_subword_prefix = (object?)null,
                    end_of_word_suffix = (object?)null,
                    fuse_unk = true,
                    byte_fallback = true,
                    vocab,
                    merges = new[] { "▁ t", "▁t h", "▁th e", "▁ a" },
                },
            }
        );
    }

    [Fact]
    public void Llama3StyleSplitsByItsPatternMergesBytesAndAddsBeginOfText()
    {
        using var tokenizer = HfTokenizer.Load(Llama3Style(bos: true), vocabularyLimit: 128_256);
        var ids = tokenizer.Encode("a the 123");
        // <|begin_of_text|>, "a", " the", " ", "12", "3": digits split in threes by the pattern, then "1 2" merged.
        Assert.Equal([260, 'a', 258, ' ', 259, '3'], ids);
        Assert.Equal(["<|begin_of_text|>", "a", "␣the", "␣", "12", "3"], TokenPieces.Display(tokenizer, ids));
        Assert.Equal("a the 123", tokenizer.Decode(ids.Skip(1).ToArray()));
    }

    [Fact]
    public void ByteLevelPiecesOfAMultiByteCharacterShowWhereItCompletes()
    {
        using var tokenizer = HfTokenizer.Load(Llama3Style(bos: false));
        var ids = tokenizer.Encode("é");
        Assert.Equal([0xC3, 0xA9], ids);
        // The lead byte alone is part of a character: shown as its byte; the character shows in the token that
        // completes it.
        Assert.Equal(["\\xC3", "é"], TokenPieces.Display(tokenizer, ids));
    }

    [Theory]
    [InlineData(true, new[] { "␣a", "␣the" })] // Phi-3: a ▁ before the text
    [InlineData(false, new[] { "a", "␣the" })] // Gemma: none
    public void SentencePieceStylePiecesShowSpacesAsTheVocabularyHoldsThem(bool prependSpace, string[] pieces)
    {
        using var tokenizer = HfTokenizer.Load(SentencePieceStyle(prependSpace));
        var ids = tokenizer.Encode("a the");
        Assert.Equal(pieces, TokenPieces.Display(tokenizer, ids));
        Assert.Equal(prependSpace ? " a the" : "a the", tokenizer.Decode(ids));
    }

    [Fact]
    public void SentencePieceByteFallbackTokensShowTheCharacterTheyMake()
    {
        using var tokenizer = HfTokenizer.Load(SentencePieceStyle(prependSpace: false));
        var ids = tokenizer.Encode("é");
        Assert.Equal([3 + 0xC3, 3 + 0xA9], ids); // <0xC3> <0xA9>: é is not in the vocabulary
        Assert.Equal("<0xC3>", tokenizer.TokenName(ids[0]));
        Assert.Equal(["\\xC3", "é"], TokenPieces.Display(tokenizer, ids));
        Assert.Equal("é", tokenizer.Decode(ids));
    }
}
