using System.Globalization;
using System.Text;
using System.Text.Json;
using Explorer.Core.Formatting;

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

    /// <summary>Largest vocabulary read when no model bounds it (the largest published ones hold about 256k).</summary>
    public const int MaxVocabulary = 1 << 22;

    /// <summary>
    /// Reads a tokenizer.json. Every id must lie in [0, <paramref name="vocabularyLimit"/>) (the model's vocab_size;
    /// <see cref="MaxVocabulary"/> when not given): ids are checked before anything sized by them is allocated, and
    /// every problem is named with the file and the field. Throws <see cref="ArgumentException"/>.
    /// </summary>
    public static HfTokenizer Load(string path, int? vocabularyLimit = null)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new ArgumentException($"{path} does not exist.", nameof(path));
        if (info.Length > MaxBytes)
            throw new ArgumentException(
                $"{path} is {info.Length:N0} bytes; a tokenizer.json may be at most {MaxBytes:N0}.",
                nameof(path)
            );
        var limit = Math.Min(vocabularyLimit ?? MaxVocabulary, MaxVocabulary);
        var (names, bytes) = ReadVocabulary(
            path,
            limit,
            vocabularyLimit is null ? $"at most {MaxVocabulary:N0} tokens are read" : "the model's vocab_size"
        );
        Tokenizers.DotNet.Tokenizer tokenizer;
        try
        {
            tokenizer = new Tokenizers.DotNet.Tokenizer(path);
        }
        catch (Exception e)
            when (e is Tokenizers.DotNet.TokenizerException or DllNotFoundException or BadImageFormatException)
        {
            throw new ArgumentException(
                $"{path} could not be loaded by the tokenizers library: {e.Message}",
                nameof(path),
                e
            );
        }
        return new HfTokenizer(info.Directory?.Name ?? "tokenizer", tokenizer, names, bytes);
    }

    private static (string[] Names, byte[][] Bytes) ReadVocabulary(string path, int limit, string limitMeaning)
    {
        var file = Path.GetFileName(path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{path} is not valid JSON: {e.Message.Split(" Path:")[0]}", nameof(path));
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (
                root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("model", out var model)
                || model.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("vocab", out var vocab)
                || vocab.ValueKind != JsonValueKind.Object
            )
                throw new ArgumentException(
                    $"{path} has no model.vocab object; only BPE tokenizer.json files are supported.",
                    nameof(path)
                );
            var problems = new List<string>();
            var byId = new Dictionary<int, (string Name, bool Special)>();
            string Range(string field, JsonElement value) =>
                $"{file}: {field} is {Clip(value.GetRawText())}; ids must be whole numbers in [0, "
                + $"{limit:N0}) ({limitMeaning}).";
            bool TryId(JsonElement value, out int id)
            {
                id = -1;
                return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out id) && id >= 0 && id < limit;
            }
            foreach (var entry in vocab.EnumerateObject())
            {
                if (!TryId(entry.Value, out var id))
                    problems.Add(Range($"model.vocab[{Clip(JsonSerializer.Serialize(entry.Name))}]", entry.Value));
                else if (byId.TryGetValue(id, out var other))
                    problems.Add(
                        $"{file}: model.vocab gives id {id} to both "
                            + $"{Clip(JsonSerializer.Serialize(other.Name))} and "
                            + $"{Clip(JsonSerializer.Serialize(entry.Name))}."
                    );
                else
                    byId[id] = (entry.Name, false);
            }
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind != JsonValueKind.Null)
            {
                if (added.ValueKind != JsonValueKind.Array)
                    problems.Add($"{file}: added_tokens must be an array, not {added.ValueKind}.");
                else
                {
                    var i = 0;
                    foreach (var token in added.EnumerateArray())
                    {
                        var field = $"added_tokens[{i++}]";
                        if (
                            token.ValueKind != JsonValueKind.Object
                            || !token.TryGetProperty("id", out var idElement)
                            || !token.TryGetProperty("content", out var content)
                            || content.ValueKind != JsonValueKind.String
                        )
                            problems.Add(
                                $"{file}: {field} must be an object with a whole-number id and a string content."
                            );
                        else if (!TryId(idElement, out var id))
                            problems.Add(Range($"{field}.id", idElement));
                        else // an added token may restate a vocabulary entry (SentencePiece files do): it wins
                            byId[id] = (
                                content.GetString()!,
                                token.TryGetProperty("special", out var special)
                                    && special.ValueKind == JsonValueKind.True
                            );
                    }
                }
            }
            if (problems.Count > 0)
                throw new ArgumentException(ProblemText.Join($"{path} cannot be used:", problems));
            var byteLevel = root.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal);
            var size = byId.Count == 0 ? 0 : byId.Keys.Max() + 1; // at most limit, checked above
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
    }

    private static string Clip(string text) => text.Length <= 60 ? text : text[..57] + "...";

    private static byte[] NameToBytes(string name, bool byteLevel)
    {
        if (byteLevel && ByteLevel.ToBytes(name) is { } bytes)
            return bytes;
        // SentencePiece-style: ▁ is a space, <0xNN> a raw byte.
        if (
            name.Length == 6
            && name.StartsWith("<0x", StringComparison.Ordinal)
            && name.EndsWith('>')
            && byte.TryParse(name.AsSpan(3, 2), NumberStyles.HexNumber, null, out var b)
        )
            return [b];
        return Encoding.UTF8.GetBytes(name.Replace('▁', ' '));
    }

    public IReadOnlyList<int> Encode(string text) => _tokenizer.Encode(text).Select(id => (int)id).ToArray();

    public string Decode(IReadOnlyList<int> ids) => _tokenizer.Decode(ids.Select(id => (uint)id).ToArray());

    public byte[] TokenBytes(int id) => _bytes[CheckId(id)];

    public string TokenName(int id) => _names[CheckId(id)];

    private int CheckId(int id) =>
        id >= 0 && id < _names.Length
            ? id
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id must be in [0, {_names.Length}).");

    public void Dispose() => _tokenizer.Dispose();
}
