using System.Text;

namespace Explorer.Model.Tokenization;

/// <summary>
/// Readable pieces for token chips. A character split across tokens is shown in the token that completes it;
/// a token holding only part of a character, or bytes that are not UTF-8, shows them as \xHH. Whitespace is
/// made visible (␣ ↵ ⇥).
/// </summary>
public static class TokenPieces
{
    public static IReadOnlyList<string> Display(ITextTokenizer tokenizer, IReadOnlyList<int> ids) =>
        Display(
            ids.Select(id =>
                    HasToken(tokenizer, id) ? (tokenizer.TokenBytes(id), tokenizer.TokenName(id)) : ([], NoToken(id))
                )
                .ToArray()
        );

    /// <summary>One id shown alone (a prediction, a lens entry): its piece, or <c>&lt;id N&gt;</c> when it has no
    /// token.</summary>
    public static string Display(ITextTokenizer? tokenizer, int id) =>
        tokenizer is null ? NoToken(id) : Display(tokenizer, [id])[0];

    /// <summary>
    /// Whether the tokenizer has a token for <paramref name="id"/>. Models often pad their vocabulary beyond the
    /// tokenizer's (DeepSeek LLM: 102,400 rows for about 100k tokens), and a model may still predict those rows.
    /// </summary>
    public static bool HasToken(ITextTokenizer tokenizer, int id) => id >= 0 && id < tokenizer.VocabularySize;

    /// <summary>How an id without a token is shown.</summary>
    public static string NoToken(int id) => $"<id {id}>";

    public static IReadOnlyList<string> Display(IReadOnlyList<(byte[] Bytes, string Name)> tokens)
    {
        var result = new string[tokens.Count];
        var pending = new List<byte>(); // leading bytes of a character not yet complete
        for (var t = 0; t < tokens.Count; t++)
        {
            var (bytes, name) = tokens[t];
            if (bytes.Length == 0)
            {
                result[t] = name; // special token
                continue;
            }
            var text = new StringBuilder();
            var carried = pending.Count;
            var stream = pending.Concat(bytes).ToArray();
            pending.Clear();
            var i = 0;
            while (i < stream.Length)
            {
                var need = SequenceLength(stream[i]);
                if (need == 0)
                {
                    text.Append($"\\x{stream[i]:X2}");
                    i++;
                    continue;
                }
                if (i + need > stream.Length)
                {
                    // Incomplete at the end: the next token may finish it.
                    if (t + 1 < tokens.Count && tokens[t + 1].Bytes.Length > 0)
                        pending.AddRange(stream[i..]);
                    else
                        foreach (var b in stream[i..])
                            text.Append($"\\x{b:X2}");
                    break;
                }
                var slice = stream.AsSpan(i, need);
                if (IsValid(slice))
                    text.Append(Encoding.UTF8.GetString(slice));
                else
                    text.Append($"\\x{stream[i]:X2}");
                i += IsValid(slice) ? need : 1;
            }
            var shown = Visible(text.ToString());
            if (shown.Length == 0)
                shown = string.Concat(bytes.Select(b => $"\\x{b:X2}")); // only part of a character
            result[t] = carried > 0 && shown.Length == 0 ? "…" : shown;
        }
        return result;
    }

    private static int SequenceLength(byte lead) =>
        lead < 0x80 ? 1
        : lead is >= 0xC2 and <= 0xDF ? 2
        : lead is >= 0xE0 and <= 0xEF ? 3
        : lead is >= 0xF0 and <= 0xF4 ? 4
        : 0;

    private static bool IsValid(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);

    private static string Visible(string text) =>
        text.Replace(' ', '␣').Replace("\n", "↵").Replace("\t", "⇥").Replace("\r", "␍");
}
