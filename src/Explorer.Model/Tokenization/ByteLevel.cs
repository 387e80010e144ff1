namespace Explorer.Model.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: every byte is written as a printable character (space as 'Ġ', newline as 'Ċ', …)
/// in vocabulary files. This maps those characters back to bytes.
/// </summary>
public static class ByteLevel
{
    private static readonly Dictionary<char, byte> CharToByte = Build();
    private static readonly char[] ByteToChar = CharToByte.OrderBy(p => p.Value).Select(p => p.Key).ToArray();

    /// <summary>The character that stands for <paramref name="b"/> in a byte-level vocabulary.</summary>
    public static char ToChar(byte b) => ByteToChar[b];

    private static Dictionary<char, byte> Build()
    {
        var printable = new List<int>();
        for (var b = '!'; b <= '~'; b++)
            printable.Add(b);
        for (var b = 0xA1; b <= 0xAC; b++)
            printable.Add(b);
        for (var b = 0xAE; b <= 0xFF; b++)
            printable.Add(b);
        var map = new Dictionary<char, byte>();
        var next = 0;
        for (var b = 0; b < 256; b++)
            map[(char)(printable.Contains(b) ? b : 256 + next++)] = (byte)b;
        return map;
    }

    /// <summary>Bytes of a byte-level token name, or null when it uses characters outside the alphabet.</summary>
    public static byte[]? ToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out var b))
                return null;
            bytes[i] = b;
        }
        return bytes;
    }
}
