using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Patching;

/// <summary>
/// A sweep's result: the metric of the clean and the corrupted (or unablated) run, and one value per site
/// (<see cref="Values"/>[row, column]: boundary × position, layer × head, or layer × 1).
/// </summary>
public sealed record SweepResult(string Kind, string Metric, double Clean, double Corrupted, double[,] Values);

/// <summary>One point of a layer-removal curve: <paramref name="Removed"/> layers gone, as a fraction of the
/// depth.</summary>
public sealed record RemovalPoint(int Removed, double Fraction, double Metric, double KlFromClean);

/// <summary>The order layers are removed in (0-based, least block influence first) and the curve.</summary>
public sealed record RemovalCurve(IReadOnlyList<int> Order, IReadOnlyList<RemovalPoint> Points);

/// <summary>
/// Exact sweeps over a resident decoder, each change applied in the decoder's one forward (<see cref="Interventions"/>)
/// and run from the states below it, so a change at layer l costs L − l layers:
/// <list type="bullet">
/// <item>residual patching: the clean run's residual after layer b at position p written into the corrupted run, all
/// positions of one boundary as one batch; the value is the normalised effect on the logit difference;</item>
/// <item>head ablation: each query head of each layer zeroed on the clean run; the value is the change of the logit
/// difference;</item>
/// <item>layer removal: each layer skipped alone on the clean run; the value is the change of the logit
/// difference.</item>
/// </list>
/// Progress is reported as a fraction; cancellation is checked between layers.
/// </summary>
public static class Sweeps
{
    /// <summary>Most sites a sweep runs (a 95-layer model at 2,048 tokens is under it): beyond, the request is refused
    /// before anything runs.</summary>
    public const long MaxSites = 1 << 18;

    private static Tensor Input(int[] ids) => Hosting.LiveModel.ToTensor(ids);

    private static float[] Last(Tensor logits)
    {
        using var row = logits.to(ScalarType.Float32).contiguous();
        return row.data<float>().ToArray();
    }

    private static double Difference(float[] logits, PatchingProblem problem) => problem.Measure(logits);

    private static void Check(Decoder.Decoder decoder, PatchingProblem problem, long sites, bool streamed = false)
    {
        problem.Check(decoder.Spec.VocabularySize);
        if (decoder.IsStreamed && !streamed)
            throw new InvalidOperationException(
                $"{decoder.Spec.Name} is streamed: exact sweeps rerun the layers above each site and "
                    + "need the model resident; attribution patching runs streamed."
            );
        if (sites > MaxSites)
            throw new ArgumentException(
                $"The sweep has {sites:N0} sites; at most {MaxSites:N0} are run. Use a shorter prompt."
            );
    }

    /// <summary>Residual patching, clean into corrupted: (L + 1) × T normalised effects on the logit
    /// difference.</summary>
    public static SweepResult ResidualPatching(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        int layers = decoder.Spec.Layers,
            t = problem.Length;
        Check(decoder, problem, (long)(layers + 1) * t);
        using var noGrad = torch.no_grad();
        using var cleanInput = Input(problem.Clean);
        using var corruptedInput = Input(problem.Corrupted);
        using var cleanStates = decoder.ResidualStates(cleanInput, cancellation); // (L + 1, T, d) fp32
        using var corruptedStates = decoder.ResidualStates(corruptedInput, cancellation);
        using var cleanLogits = decoder.Logits(cleanInput);
        using var corruptedLogits = decoder.Logits(corruptedInput);
        var clean = Difference(Last(cleanLogits[0, ^1]), problem);
        var corrupted = Difference(Last(corruptedLogits[0, ^1]), problem);
        var values = new double[layers + 1, t];
        for (var b = 0; b <= layers; b++)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            // Row p of the batch is the corrupted states at boundary b with position p taken from the clean run.
            var batch = corruptedStates[b].unsqueeze(0).repeat(t, 1, 1); // (T, T, d)
            var positions = torch.arange(t, dtype: ScalarType.Int64);
            batch.index_put_(cleanStates[b], positions, positions);
            // (T, vocab)
            var logits = decoder.RunFrom(batch.to(decoder.DType).to(decoder.Device), b, null, cancellation);
            var all = Last(logits);
            var vocabulary = decoder.Spec.VocabularySize;
            for (var p = 0; p < t; p++)
                values[b, p] = PatchingMetric.NormalisedEffect(
                    problem.Measure(all.AsSpan(p * vocabulary, vocabulary)),
                    clean,
                    corrupted
                );
            progress?.Report((b + 1.0) / (layers + 1));
        }
        return new SweepResult("residual", $"normalised effect on {problem.MetricName}", clean, corrupted, values);
    }

    /// <summary>Head ablation on the clean prompt: L × H changes of the logit difference when each query head is
    /// zeroed.</summary>
    public static SweepResult HeadAblation(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        Ablation kind = Ablation.Zero,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        int layers = decoder.Spec.Layers,
            heads = decoder.Spec.AttentionHeads;
        Check(decoder, problem, (long)layers * heads);
        using var noGrad = torch.no_grad();
        using var input = Input(problem.Clean);
        using var states = decoder.ResidualStates(input, cancellation);
        using var logits = decoder.Logits(input);
        var clean = Difference(Last(logits[0, ^1]), problem);
        var values = new double[layers, heads];
        var vocabulary = decoder.Spec.VocabularySize;
        var everyHead = Enumerable.Range(0, heads).Select(h => (long)h).ToArray();
        for (var l = 0; l < layers; l++)
        {
            cancellation.ThrowIfCancellationRequested();
            // One forward from layer l of a batch of H copies, row h with head h ablated.
            using var start = states[l].unsqueeze(0).repeat(heads, 1, 1).to(decoder.DType).to(decoder.Device);
            using var ablated = decoder.RunFrom(
                start,
                l,
                new Interventions { HeadPerRow = (l, everyHead, kind) },
                cancellation
            ); // (H, vocab)
            var all = Last(ablated);
            for (var h = 0; h < heads; h++)
                values[l, h] = problem.Measure(all.AsSpan(h * vocabulary, vocabulary)) - clean;
            progress?.Report((l + 1.0) / layers);
        }
        return new SweepResult(
            $"heads ({kind.ToString().ToLowerInvariant()} ablation)",
            $"change of {problem.MetricName}",
            clean,
            clean,
            values
        );
    }

    /// <summary>
    /// Head patching, clean into corrupted: L × H normalised effects on the logit difference when one query head's
    /// output before o_proj (every position) is taken from the clean run. Each layer's H patches run as one batch from
    /// the corrupted states below it.
    /// </summary>
    public static SweepResult HeadPatching(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        int layers = decoder.Spec.Layers,
            heads = decoder.Spec.AttentionHeads;
        Check(decoder, problem, (long)layers * heads);
        using var noGrad = torch.no_grad();
        using var cleanInput = Input(problem.Clean);
        using var corruptedInput = Input(problem.Corrupted);
        using var sources = HeadContexts.Of(decoder, problem.Clean, cancellation); // (L, H, T, hd) fp32
        using var corruptedStates = decoder.ResidualStates(corruptedInput, cancellation);
        using var cleanLogits = decoder.Logits(cleanInput);
        using var corruptedLogits = decoder.Logits(corruptedInput);
        var clean = Difference(Last(cleanLogits[0, ^1]), problem);
        var corrupted = Difference(Last(corruptedLogits[0, ^1]), problem);
        var vocabulary = decoder.Spec.VocabularySize;
        var everyHead = Enumerable.Range(0, heads).Select(h => (long)h).ToArray();
        var values = new double[layers, heads];
        for (var l = 0; l < layers; l++)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var start = corruptedStates[l].unsqueeze(0).repeat(heads, 1, 1).to(decoder.DType).to(decoder.Device);
            var source = sources[l].to(decoder.DType).to(decoder.Device);
            var patched = decoder.RunFrom(
                start,
                l,
                new Interventions { HeadPatchPerRow = (l, everyHead, source) },
                cancellation
            ); // (H, vocab)
            var all = Last(patched);
            for (var h = 0; h < heads; h++)
                values[l, h] = PatchingMetric.NormalisedEffect(
                    problem.Measure(all.AsSpan(h * vocabulary, vocabulary)),
                    clean,
                    corrupted
                );
            progress?.Report((l + 1.0) / layers);
        }
        return new SweepResult(
            "heads (patching)",
            $"normalised effect on {problem.MetricName}",
            clean,
            corrupted,
            values
        );
    }

    /// <summary>Layer removal on the clean prompt: L × 1 changes of the logit difference when each layer is skipped
    /// alone.</summary>
    public static SweepResult LayerRemoval(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        var layers = decoder.Spec.Layers;
        Check(decoder, problem, layers);
        using var noGrad = torch.no_grad();
        using var input = Input(problem.Clean);
        using var states = decoder.ResidualStates(input, cancellation);
        using var logits = decoder.Logits(input);
        var clean = Difference(Last(logits[0, ^1]), problem);
        var values = new double[layers, 1];
        for (var l = 0; l < layers; l++)
        {
            // Skipping layer l: its output is its input, so the rest runs from the state before it.
            using var start = states[l].unsqueeze(0).to(decoder.DType).to(decoder.Device);
            using var skipped = decoder.RunFrom(start, l + 1, null, cancellation);
            values[l, 0] = Difference(Last(skipped[0]), problem) - clean;
            progress?.Report((l + 1.0) / layers);
        }
        return new SweepResult("layers (each removed alone)", $"change of {problem.MetricName}", clean, clean, values);
    }

    /// <summary>
    /// The layer-removal curve (ShortGPT's Block Influence order): layers sorted by their mean block influence
    /// 1 − cos(h_in, h_out) on the clean prompt, least first; for k = 0…L the first k removed together. Each point:
    /// the logit difference, and the KL divergence of the last position's prediction from the clean run's.
    /// </summary>
    public static RemovalCurve LayerRemovalCurve(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        var layers = decoder.Spec.Layers;
        problem.Check(decoder.Spec.VocabularySize);
        using var input = Input(problem.Clean);
        float[] cleanLogits;
        int[] order;
        using (
            var trace = decoder.Trace(input, new TraceOptions { Attention = false, LogitLens = false }, cancellation)
        )
        {
            cleanLogits = trace.LastLogits();
            var influence = trace.BlockInfluence!;
            order = Enumerable
                .Range(0, layers)
                .OrderBy(l => DecoderTrace.MeanOverPositions(influence, l, skipFirst: true))
                .ThenBy(l => l)
                .ToArray();
        }
        var points = new List<RemovalPoint>();
        for (var k = 0; k <= layers; k++)
        {
            var removed = order.Take(k).ToArray();
            using var logits = decoder.Logits(input, new Interventions { SkippedLayers = removed }, cancellation);
            var last = Last(logits[0, ^1]);
            points.Add(
                new RemovalPoint(
                    k,
                    (double)k / layers,
                    Difference(last, problem),
                    PatchingMetric.KlDivergence(cleanLogits, last)
                )
            );
            progress?.Report((k + 1.0) / (layers + 1));
        }
        return new RemovalCurve(order, points);
    }

    /// <summary>
    /// Attribution patching of the residual stream: for every boundary and position at once, the first-order estimate
    /// (clean − corrupted state) · ∂(logit difference)/∂state of the corrupted run, normalised as the exact sweep is.
    /// Two forwards without gradients, then the head and each layer again from the last down, each taken back once:
    /// about four forwards' work whatever the number of sites, resident or streamed (one layer's weights at a time).
    /// </summary>
    public static SweepResult ResidualAttribution(
        Decoder.Decoder decoder,
        PatchingProblem problem,
        CancellationToken cancellation = default
    )
    {
        int layers = decoder.Spec.Layers,
            t = problem.Length;
        Check(decoder, problem, (long)(layers + 1) * t, streamed: true);
        using var scope = NewDisposeScope();
        using var cleanInput = Input(problem.Clean);
        using var corruptedInput = Input(problem.Corrupted);
        var cleanStates = decoder.ResidualStates(cleanInput, cancellation); // (L + 1, T, d) fp32, CPU
        var corruptedStates = decoder.ResidualStates(corruptedInput, cancellation);
        double clean;
        using (torch.no_grad())
        {
            using var last = cleanStates[layers, t - 1].to(decoder.DType).to(decoder.Device);
            clean = Difference(Last(decoder.Head(last)), problem);
        }
        // Back from the corrupted run's metric, layer by layer, to every boundary.
        double corrupted = 0;
        var grads = decoder.ResidualGradients(
            corruptedStates,
            logits =>
            {
                var metric = problem.Measure(logits);
                corrupted = metric.to(ScalarType.Float32).item<float>();
                return metric;
            },
            cancellation
        ); // (L + 1, T, d)
        var difference = cleanStates - corruptedStates; // (L + 1, T, d)
        var estimate = (difference * grads).sum([2]).contiguous(); // (L + 1, T)
        var flat = estimate.data<float>().ToArray();
        var values = new double[layers + 1, t];
        for (var b = 0; b <= layers; b++)
        for (var p = 0; p < t; p++)
            values[b, p] = PatchingMetric.NormalisedEffect(corrupted + flat[b * t + p], clean, corrupted);
        return new SweepResult(
            "residual (attribution)",
            $"normalised effect on {problem.MetricName}, to first order",
            clean,
            corrupted,
            values
        );
    }

    /// <summary>Spearman's rank correlation of two sweeps over the sites where both are finite (ties get their mean
    /// rank).</summary>
    public static double RankCorrelation(double[,] a, double[,] b)
    {
        var pairs = Enumerable
            .Range(0, a.Length)
            .Select(i => (A: a[i / a.GetLength(1), i % a.GetLength(1)], B: b[i / b.GetLength(1), i % b.GetLength(1)]))
            .Where(p => double.IsFinite(p.A) && double.IsFinite(p.B))
            .ToArray();
        static double[] Ranks(double[] v)
        {
            var order = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
            var ranks = new double[v.Length];
            for (var i = 0; i < order.Length; )
            {
                var j = i;
                while (j + 1 < order.Length && v[order[j + 1]] == v[order[i]])
                    j++;
                for (var k = i; k <= j; k++)
                    ranks[order[k]] = (i + j) / 2.0;
                i = j + 1;
            }
            return ranks;
        }
        var ra = Ranks(pairs.Select(p => p.A).ToArray());
        var rb = Ranks(pairs.Select(p => p.B).ToArray());
        double ma = ra.Average(),
            mb = rb.Average();
        double cov = 0,
            va = 0,
            vb = 0;
        for (var i = 0; i < ra.Length; i++)
        {
            cov += (ra[i] - ma) * (rb[i] - mb);
            va += (ra[i] - ma) * (ra[i] - ma);
            vb += (rb[i] - mb) * (rb[i] - mb);
        }
        return va == 0 || vb == 0 ? double.NaN : cov / Math.Sqrt(va * vb);
    }
}
