namespace Explorer.Model.Patching;

/// <summary>
/// A clean and a corrupted prompt of the same length and the two answers told apart at the last position: the answer
/// the clean prompt leads to and the one the corrupted prompt leads to (a repeated sequence with one token changed,
/// whose induction answer flips). Checked against the vocabulary before anything runs.
/// </summary>
public sealed record PatchingProblem(
    int[] Clean,
    int[] Corrupted,
    int Answer,
    int Wrong,
    PatchMetric Metric = PatchMetric.LogitDifference
)
{
    public int Length => Clean.Length;

    /// <summary>What the sweeps' values are measured on, in words.</summary>
    public string MetricName =>
        Metric == PatchMetric.LogitDifference ? "the logit difference" : "the answer's probability";

    /// <summary>The metric of one run's last-position logits (vocab).</summary>
    public double Measure(ReadOnlySpan<float> logits) =>
        Metric == PatchMetric.LogitDifference
            ? PatchingMetric.LogitDifference(logits, Answer, Wrong)
            : PatchingMetric.Probability(logits, Answer);

    /// <summary>The metric as a 0-d tensor of last-position logits (vocab), for a gradient to be taken of it.</summary>
    public TorchSharp.torch.Tensor Measure(TorchSharp.torch.Tensor logits) =>
        Metric == PatchMetric.LogitDifference
            ? logits[Answer] - logits[Wrong]
            : TorchSharp.torch.nn.functional.softmax(logits.to(TorchSharp.torch.ScalarType.Float32), 0)[Answer];

    /// <summary>
    /// The other direction: the corrupted prompt is patched from, the clean one into, and the answers swap (noising,
    /// where clean into corrupted is denoising).
    /// </summary>
    public PatchingProblem Reversed() =>
        this with
        {
            Clean = Corrupted,
            Corrupted = Clean,
            Answer = Wrong,
            Wrong = Answer,
        };

    public void Check(int vocabulary)
    {
        if (Clean.Length == 0)
            throw new ArgumentException("The clean prompt is empty: give at least one token.");
        if (Corrupted.Length != Clean.Length)
            throw new ArgumentException(
                $"The corrupted prompt has {Corrupted.Length} tokens and the clean one {Clean.Length}: "
                    + "patching needs the same length."
            );
        foreach (
            var (name, id) in new[] { ("answer", Answer), ("wrong answer", Wrong) }.Concat(
                Clean.Concat(Corrupted).Select(id => ("token", id))
            )
        )
            if (id < 0 || id >= vocabulary)
                throw new ArgumentException($"The {name} {id} is outside the vocabulary [0, {vocabulary:N0}).");
        if (Answer == Wrong)
            throw new ArgumentException(
                $"The answer and the wrong answer are both token {Answer}: the logit difference would always be 0."
            );
    }
}

/// <summary>What a sweep measures at the last position.</summary>
public enum PatchMetric
{
    /// <summary>logit(answer) − logit(wrong).</summary>
    LogitDifference,

    /// <summary>The answer's probability.</summary>
    AnswerProbability,
}

/// <summary>A next-token prediction: the token, its probability and its logit.</summary>
public readonly record struct Prediction(int Token, double Probability, float Logit);

/// <summary>What a patching or ablation run is measured by, at the last position.</summary>
public static class PatchingMetric
{
    /// <summary>logit[answer] − logit[wrong].</summary>
    public static double LogitDifference(ReadOnlySpan<float> logits, int answer, int wrong) =>
        logits[answer] - logits[wrong];

    /// <summary>softmax(logits)[token].</summary>
    public static double Probability(ReadOnlySpan<float> logits, int token)
    {
        var (max, sum) = Softmax(logits);
        return Math.Exp(logits[token] - max) / sum;
    }

    /// <summary>softmax(x)_i = exp(x_i − max) / sum: the largest logit and the sum of exp(x − max).</summary>
    private static (double Max, double Sum) Softmax(ReadOnlySpan<float> logits)
    {
        var max = double.NegativeInfinity;
        foreach (var v in logits)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in logits)
            sum += Math.Exp(v - max);
        return (max, sum);
    }

    /// <summary>The <paramref name="k"/> most likely next tokens, most likely first (ties: the lower id
    /// first).</summary>
    public static Prediction[] Top(ReadOnlySpan<float> logits, int k)
    {
        if (k < 1)
            throw new ArgumentOutOfRangeException(nameof(k), k, "Ask for at least one prediction.");
        var (max, sum) = Softmax(logits);
        var values = logits.ToArray();
        return Enumerable
            .Range(0, values.Length)
            .OrderByDescending(i => values[i])
            .ThenBy(i => i)
            .Take(k)
            .Select(i => new Prediction(i, Math.Exp(values[i] - max) / sum, values[i]))
            .ToArray();
    }

    /// <summary>KL(p ‖ q) of the softmaxes, in nats: how far a run's prediction <paramref name="q"/> moved from
    /// <paramref name="p"/> (the clean run's).</summary>
    public static double KlDivergence(ReadOnlySpan<float> p, ReadOnlySpan<float> q)
    {
        var lp = LogSoftmax(p);
        var lq = LogSoftmax(q);
        double kl = 0;
        for (var i = 0; i < lp.Length; i++)
            kl += Math.Exp(lp[i]) * (lp[i] - lq[i]);
        return kl;
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> x)
    {
        var max = double.NegativeInfinity;
        foreach (var v in x)
            max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x)
            sum += Math.Exp(v - max);
        var log = Math.Log(sum) + max;
        var result = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
            result[i] = x[i] - log;
        return result;
    }

    /// <summary>
    /// (patched − corrupted) / (clean − corrupted): 1 where a patch restores the clean answer's metric in full, 0 where
    /// it does nothing. NaN when the clean and corrupted runs do not differ (nothing to restore).
    /// </summary>
    public static double NormalisedEffect(double patched, double clean, double corrupted) =>
        clean == corrupted ? double.NaN : (patched - corrupted) / (clean - corrupted);
}
