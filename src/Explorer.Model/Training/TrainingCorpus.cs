using System.Text;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Training;

/// <summary>Where training sequences come from: token ids, T + 1 at a time (inputs and next-token targets).</summary>
public interface ITrainingCorpus
{
    string Name { get; }
    /// <summary>A batch of <paramref name="batch"/> sequences of <paramref name="length"/> + 1 token ids, from the generator.</summary>
    long[,] Batch(Random random, int batch, int length);
}

/// <summary>
/// The built-in corpus, deterministic from its seed and shipped with the app: templated English-like sentences,
/// random token segments repeated (which rewards induction heads: the token after the earlier occurrence comes
/// next), and bracket sequences that must close in order.
/// </summary>
public sealed class BuiltInCorpus(ITextTokenizer tokenizer) : ITrainingCorpus
{
    private static readonly string[] Subjects = ["the model", "a layer", "the head", "every stage", "the residual stream", "a small network", "the planner", "each token"];
    private static readonly string[] Verbs = ["reads", "writes", "moves", "copies", "follows", "predicts", "adds", "splits"];
    private static readonly string[] Objects = ["the next token", "the previous word", "a long sequence", "the first position", "its own output", "the last layer", "eight devices", "the attention map"];
    private static readonly string[] Tails = [".", " again.", " quickly.", " in order.", " before the end.", ", and then stops."];

    public string Name => "built-in";

    public long[,] Batch(Random random, int batch, int length)
    {
        var result = new long[batch, length + 1];
        for (var b = 0; b < batch; b++)
        {
            var ids = new List<int>(length + 1);
            while (ids.Count < length + 1)
                ids.AddRange(random.Next(3) switch
                {
                    0 => tokenizer.Encode(Sentence(random)),
                    1 => Repeated(random),
                    _ => tokenizer.Encode(Brackets(random)),
                });
            for (var t = 0; t <= length; t++)
                result[b, t] = ids[t];
        }
        return result;
    }

    private static string Sentence(Random r) =>
        " " + char.ToUpperInvariant(Subjects[r.Next(Subjects.Length)][0]) + Subjects[r.Next(Subjects.Length)][1..] + " "
        + Verbs[r.Next(Verbs.Length)] + " " + Objects[r.Next(Objects.Length)] + Tails[r.Next(Tails.Length)];

    private IEnumerable<int> Repeated(Random r)
    {
        // 8–24 random ordinary tokens, then the same again: the second copy is predictable only by induction.
        var segment = Enumerable.Range(0, r.Next(8, 25)).Select(_ => r.Next(256, tokenizer.VocabularySize - 1)).ToArray();
        return segment.Concat(segment);
    }

    private static string Brackets(Random r)
    {
        const string open = "([{<", close = ")]}>";
        var text = new StringBuilder(" ");
        var stack = new Stack<int>();
        for (var i = 0; i < r.Next(6, 20); i++)
        {
            if (stack.Count > 0 && r.Next(2) == 0)
                text.Append(close[stack.Pop()]);
            else
            {
                var k = r.Next(open.Length);
                stack.Push(k);
                text.Append(open[k]);
            }
        }
        while (stack.Count > 0)
            text.Append(close[stack.Pop()]);
        return text.ToString();
    }
}

/// <summary>A user's UTF-8 text file, tokenized once; batches are windows at random offsets.</summary>
public sealed class TextFileCorpus : ITrainingCorpus
{
    public const long MaxBytes = 16L << 20;
    private readonly int[] _tokens;

    private TextFileCorpus(string name, int[] tokens)
    {
        Name = name;
        _tokens = tokens;
    }

    public string Name { get; }
    public int TokenCount => _tokens.Length;

    public static TextFileCorpus FromBytes(string name, ReadOnlySpan<byte> bytes, ITextTokenizer tokenizer, int minimumTokens)
    {
        if (bytes.Length > MaxBytes)
            throw new ArgumentException($"{name} is {bytes.Length:N0} bytes; a training text may be at most {MaxBytes:N0} bytes.");
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new ArgumentException($"{name} is not UTF-8 text; save it as UTF-8 and upload it again.");
        var tokens = tokenizer.Encode(Encoding.UTF8.GetString(bytes)).ToArray();
        if (tokens.Length < minimumTokens)
            throw new ArgumentException($"{name} has {tokens.Length:N0} tokens; training needs at least {minimumTokens:N0} (one sequence plus its target).");
        return new TextFileCorpus(name, tokens);
    }

    public long[,] Batch(Random random, int batch, int length)
    {
        if (length + 1 > _tokens.Length)
            throw new ArgumentException($"Sequences of {length} tokens need a text of at least {length + 1} tokens; {Name} has {_tokens.Length}.");
        var result = new long[batch, length + 1];
        for (var b = 0; b < batch; b++)
        {
            var start = random.Next(_tokens.Length - length);
            for (var t = 0; t <= length; t++)
                result[b, t] = _tokens[start + t];
        }
        return result;
    }
}
