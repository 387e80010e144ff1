using Explorer.Model.Decoder;

namespace Explorer.Model.Training;

/// <summary>One head's scores on the induction probe.</summary>
public sealed record HeadScore(int Layer, int Head, double Induction, double PreviousToken);

/// <summary>
/// Scores of the induction probe: a sequence of random tokens repeated twice (length n each). A previous-token head
/// puts its weight on A[i, i−1]; an induction head, in the second copy, on A[i, i−n+1]: the token after the
/// current token's earlier occurrence.
/// </summary>
public static class AttentionProbe
{
    /// <summary>A head scoring at least this on a probe is called an induction (or previous-token) head.</summary>
    public const double HeadThreshold = 0.5;

    /// <summary>Tokens in each of the probe's two copies.</summary>
    public const int Length = 32;

    /// <summary>Random ordinary tokens repeated twice, from a fixed seed.</summary>
    public static int[] RepeatedTokens(int n, int vocabulary, int seed = 7)
    {
        var random = new Random(seed);
        var first = Enumerable
            .Range(0, n)
            .Select(_ => random.Next(Tokenization.MiniTokenizer.FirstOrdinaryId, vocabulary - 1))
            .ToArray();
        return [.. first, .. first];
    }

    /// <summary>Mean over the second copy's positions i = n…2n−1 of A[i, i − n + 1], for a row-major T × T map, T =
    /// 2n.</summary>
    public static double InductionScore(float[] map, int n)
    {
        var t = 2 * n;
        if (map.Length != t * t)
            throw new ArgumentException($"A map of {map.Length} entries is not {t} × {t}.");
        double sum = 0;
        for (var i = n; i < t; i++)
            sum += map[i * t + i - n + 1];
        return sum / n;
    }

    /// <summary>Runs the probe (random tokens repeated twice, <paramref name="n"/> each) and scores every
    /// head.</summary>
    public static IReadOnlyList<HeadScore> Measure(Decoder.Decoder decoder, int n = Length, int seed = 7)
    {
        var ids = RepeatedTokens(n, decoder.Spec.VocabularySize, seed);
        using var tokens = TorchSharp
            .torch.tensor(ids.Select(i => (long)i).ToArray(), dtype: TorchSharp.torch.ScalarType.Int64)
            .unsqueeze(0);
        using var trace = decoder.Trace(tokens, TraceOptions);
        return Score(trace, n);
    }

    /// <summary>What a probe's trace keeps: the attention maps only.</summary>
    public static readonly TraceOptions TraceOptions = new()
    {
        Residual = false,
        LogitLens = false,
        Attention = true,
    };

    /// <summary>Every head's scores in the trace of a probe of <paramref name="n"/> tokens repeated twice.</summary>
    public static IReadOnlyList<HeadScore> Score(DecoderTrace trace, int n = Length)
    {
        if (trace.Length != 2 * n)
            throw new ArgumentException(
                $"A probe of {n} tokens repeated twice is {2 * n} tokens long, not {trace.Length}."
            );
        var scores = new List<HeadScore>();
        for (var layer = 0; layer < trace.Layers; layer++)
        for (var head = 0; head < trace.Spec.AttentionHeads; head++)
        {
            var map = trace.HeadMap(layer, head);
            scores.Add(new HeadScore(layer, head, InductionScore(map, n), PreviousTokenScore(map, 2 * n)));
        }
        return scores;
    }

    /// <summary>Mean over i = 1…T−1 of A[i, i−1].</summary>
    public static double PreviousTokenScore(float[] map, int t)
    {
        double sum = 0;
        for (var i = 1; i < t; i++)
            sum += map[i * t + i - 1];
        return sum / (t - 1);
    }
}
