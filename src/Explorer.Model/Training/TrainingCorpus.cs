using System.Text;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Training;

/// <summary>Where training sequences come from: token ids, T + 1 at a time (inputs and next-token targets).</summary>
public interface ITrainingCorpus
{
    string Name { get; }

    /// <summary>A batch of <paramref name="batch"/> sequences of <paramref name="length"/> + 1 token ids, from the
    /// generator.</summary>
    long[,] Batch(Random random, int batch, int length);
}

/// <summary>
/// How often each kind of chunk of the built-in corpus is drawn (relative weights), and how long a repeated segment
/// is. The default is an even mix.
/// </summary>
public sealed record CorpusMix(
    int Sentences = 1,
    int Repeats = 1,
    int Brackets = 1,
    int MinRepeat = 8,
    int MaxRepeat = 24,
    int Copies = 2,
    int Alphabet = 0
)
{
    /// <summary>Parses "S:R:B" weights, as the command line gives them.</summary>
    public static CorpusMix Parse(
        string weights,
        int minRepeat = 8,
        int maxRepeat = 24,
        int copies = 2,
        int alphabet = 0
    )
    {
        var parts = weights.Split(':');
        if (parts.Length != 3 || !parts.All(p => int.TryParse(p, out _)))
            throw new ArgumentException(
                $"mix '{weights}': give three whole numbers S:R:B (sentences, repeated segments, brackets), e.g. 1:4:1."
            );
        var mix = new CorpusMix(
            int.Parse(parts[0]),
            int.Parse(parts[1]),
            int.Parse(parts[2]),
            minRepeat,
            maxRepeat,
            copies,
            alphabet
        );
        return mix.Problems() is { Count: > 0 } problems
            ? throw new ArgumentException(string.Join("; ", problems) + ".")
            : mix;
    }

    public static CorpusMix Even { get; } = new();

    public IReadOnlyList<string> Problems()
    {
        var p = new List<string>();
        if (Sentences < 0 || Repeats < 0 || Brackets < 0 || Sentences + Repeats + Brackets == 0)
            p.Add($"mix {Sentences}:{Repeats}:{Brackets}: weights must be non-negative and not all zero");
        if (MinRepeat < 1 || MaxRepeat < MinRepeat)
            p.Add($"repeated segments of {MinRepeat}–{MaxRepeat} tokens: use 1 ≤ min ≤ max");
        if (Alphabet < 0)
            p.Add($"alphabet of {Alphabet} tokens: use 0 (every ordinary token) or a positive count");
        if (Copies is < 2 or > 8)
            p.Add($"{Copies} copies of a segment: use 2 to 8");
        return p;
    }
}

/// <summary>
/// The built-in corpus, deterministic from its seed and shipped with the app: templated English-like sentences,
/// random token segments repeated (which rewards induction heads: the token after the earlier occurrence comes
/// next), and bracket sequences that must close in order.
/// </summary>
public sealed class BuiltInCorpus(ITextTokenizer tokenizer, CorpusMix? mix = null) : ITrainingCorpus
{
    private readonly CorpusMix _mix = (mix ?? CorpusMix.Even).Problems() is { Count: > 0 } problems
        ? throw new ArgumentException(string.Join("; ", problems) + ".")
        : mix ?? CorpusMix.Even;

    /// <summary>
    /// The sentence template: a subject, then a predicate whose object the verb decides ("Each token reads the
    /// attention map."). The subject and the verb are free choices; everything after the verb follows from it, so a
    /// model that learned the grammar predicts most of a sentence, including sentences it never saw.
    /// </summary>
    public static readonly string[] Subjects =
    [
        "The model",
        "A layer",
        "The head",
        "Every stage",
        "The residual stream",
        "A small network",
        "The planner",
        "Each token",
    ];
    public static readonly (string Verb, string Object)[] Predicates =
    [
        ("reads", "the attention map"),
        ("writes", "its own output"),
        ("moves", "a long sequence"),
        ("copies", "the previous word"),
        ("follows", "the first position"),
        ("predicts", "the next token"),
        ("adds", "the last layer"),
        ("splits", "eight devices"),
    ];

    /// <summary>A quarter of the subject × verb pairs never appear in training: they test whether the grammar was
    /// learned.</summary>
    public static bool IsHeldOut(int subject, int predicate) => (subject + predicate) % 4 == 0;

    /// <summary>The sentences training never shows, each as the model sees it (leading space, final period).</summary>
    public static IReadOnlyList<string> HeldOutSentences() =>
        (
            from s in Enumerable.Range(0, Subjects.Length)
            from p in Enumerable.Range(0, Predicates.Length)
            where IsHeldOut(s, p)
            select SentenceText(s, p)
        ).ToArray();

    private static string SentenceText(int subject, int predicate) =>
        $" {Subjects[subject]} {Predicates[predicate].Verb} {Predicates[predicate].Object}.";

    public string Name => "built-in";

    public long[,] Batch(Random random, int batch, int length)
    {
        var result = new long[batch, length + 1];
        for (var b = 0; b < batch; b++)
        {
            var ids = new List<int>(length + 1);
            while (ids.Count < length + 1)
            {
                var pick = random.Next(_mix.Sentences + _mix.Repeats + _mix.Brackets);
                ids.AddRange(
                    pick < _mix.Sentences ? tokenizer.Encode(Sentence(random))
                    : pick < _mix.Sentences + _mix.Repeats ? Repeated(random)
                    : tokenizer.Encode(Brackets(random))
                );
            }
            for (var t = 0; t <= length; t++)
                result[b, t] = ids[t];
        }
        return result;
    }

    private static string Sentence(Random r)
    {
        while (true)
        {
            int subject = r.Next(Subjects.Length),
                predicate = r.Next(Predicates.Length);
            if (!IsHeldOut(subject, predicate))
                return SentenceText(subject, predicate);
        }
    }

    private IEnumerable<int> Repeated(Random r)
    {
        // Random ordinary tokens, then the same again: the second copy is predictable only by induction.
        var segment = Enumerable
            .Range(0, r.Next(_mix.MinRepeat, _mix.MaxRepeat + 1))
            .Select(_ =>
                r.Next(
                    MiniTokenizer.FirstOrdinaryId,
                    Math.Min(
                        tokenizer.VocabularySize - 1,
                        _mix.Alphabet > 0 ? MiniTokenizer.FirstOrdinaryId + _mix.Alphabet : int.MaxValue
                    )
                )
            )
            .ToArray();
        return Enumerable.Repeat(segment, _mix.Copies).SelectMany(s => s);
    }

    private static string Brackets(Random r)
    {
        const string open = "([{<",
            close = ")]}>";
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

    public static TextFileCorpus FromBytes(
        string name,
        ReadOnlySpan<byte> bytes,
        ITextTokenizer tokenizer,
        int minimumTokens
    )
    {
        if (bytes.Length > MaxBytes)
            throw new ArgumentException(
                $"{name} is {bytes.Length:N0} bytes; a training text may be at most {MaxBytes:N0} bytes."
            );
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new ArgumentException($"{name} is not UTF-8 text; save it as UTF-8 and upload it again.");
        var tokens = tokenizer.Encode(Encoding.UTF8.GetString(bytes)).ToArray();
        if (tokens.Length < minimumTokens)
            throw new ArgumentException(
                $"{name} has {tokens.Length:N0} tokens; training needs at least {minimumTokens:N0} (one "
                    + "sequence plus its target)."
            );
        return new TextFileCorpus(name, tokens);
    }

    public long[,] Batch(Random random, int batch, int length)
    {
        if (length + 1 > _tokens.Length)
            throw new ArgumentException(
                $"Sequences of {length} tokens need a text of at least {length + 1} tokens; {Name} has "
                    + $"{_tokens.Length}."
            );
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
