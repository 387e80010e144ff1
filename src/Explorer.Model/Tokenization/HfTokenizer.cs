using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Explorer.Model.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> (the byte-level BPE DeepSeek ships, or a SentencePiece-style BPE), run by
/// the Rust tokenizers library; the vocabulary is read from the file for display names and bytes.
/// </summary>
public sealed class HfTokenizer : ITextTokenizer
{
    public const string FileName = "tokenizer.json";
    public const long MaxBytes = 256L << 20;

    private readonly Tokenizers.DotNet.Tokenizer _tokenizer;
    private readonly string[] _names;
    private readonly byte[][] _bytes;

    private HfTokenizer(string name, Tokenizers.DotNet.Tokenizer tokenizer, string[] names, byte[][] bytes)
    {
        Name = name;
        _tokenizer = tokenizer;
        _names = names;
        _bytes = bytes;
    }

    public string Name { get; }
    public int VocabularySize => _names.Length;

    public static HfTokenizer Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new ArgumentException($"{path} does not exist.", nameof(path));
        if (info.Length > MaxBytes)
            throw new ArgumentException($"{path} is {info.Length:N0} bytes; a tokenizer.json may be at most {MaxBytes:N0}.", nameof(path));
        var (names, bytes) = ReadVocabulary(path);
        Tokenizers.DotNet.Tokenizer tokenizer;
        try
        {
            tokenizer = new Tokenizers.DotNet.Tokenizer(path);
        }
        catch (Exception e) when (e is Tokenizers.DotNet.TokenizerException or DllNotFoundException or BadImageFormatException)
        {
            throw new ArgumentException($"{path} could not be loaded by the tokenizers library: {e.Message}", nameof(path), e);
        }
        return new HfTokenizer(info.Directory?.Name ?? "tokenizer", tokenizer, names, bytes);
    }

    private static (string[] Names, byte[][] Bytes) ReadVocabulary(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || !model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"{path} has no model.vocab object; only BPE tokenizer.json files are supported.", nameof(path));
            var byteLevel = root.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal);
            var byId = new SortedDictionary<int, (string Name, bool Special)>();
            foreach (var entry in vocab.EnumerateObject())
                byId[entry.Value.GetInt32()] = (entry.Name, false);
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var token in added.EnumerateArray())
                    byId[token.GetProperty("id").GetInt32()] = (token.GetProperty("content").GetString()!,
                        token.TryGetProperty("special", out var special) && special.ValueKind == JsonValueKind.True);
            var size = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
            var names = new string[size];
            var bytes = new byte[size][];
            for (var id = 0; id < size; id++)
            {
                if (!byId.TryGetValue(id, out var token))
                {
                    names[id] = $"<unused {id}>";
                    bytes[id] = [];
                    continue;
                }
                names[id] = token.Name;
                bytes[id] = token.Special ? [] : NameToBytes(token.Name, byteLevel);
            }
            return (names, bytes);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{path} is not valid JSON: {e.Message.Split(" Path:")[0]}", nameof(path));
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new ArgumentException($"{path} is not a tokenizer.json this tool can read: {e.Message}", nameof(path));
        }
    }

    private static byte[] NameToBytes(string name, bool byteLevel)
    {
        if (byteLevel && ByteLevel.ToBytes(name) is { } bytes)
            return bytes;
        // SentencePiece-style: ▁ is a space, <0xNN> a raw byte.
        if (name.Length == 6 && name.StartsWith("<0x", StringComparison.Ordinal) && name.EndsWith('>')
            && byte.TryParse(name.AsSpan(3, 2), NumberStyles.HexNumber, null, out var b))
            return [b];
        return Encoding.UTF8.GetBytes(name.Replace('▁', ' '));
    }

    public IReadOnlyList<int> Encode(string text) => _tokenizer.Encode(text).Select(id => (int)id).ToArray();
    public string Decode(IReadOnlyList<int> ids) => _tokenizer.Decode(ids.Select(id => (uint)id).ToArray());
    public byte[] TokenBytes(int id) => _bytes[CheckId(id)];
    public string TokenName(int id) => _names[CheckId(id)];

    private int CheckId(int id) =>
        id >= 0 && id < _names.Length ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {_names.Length}).");

    public void Dispose() => _tokenizer.Dispose();
}
