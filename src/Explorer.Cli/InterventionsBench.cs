using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Model.Training;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer bench --suite interventions</c>: each sweep's time against one fused forward of the same prompt,
/// measured in one run (the ratio is the figure). A residual sweep reuses the states below each patched boundary, so
/// it should cost far less than the (L + 1) · T forwards of patching one site per forward; attribution patching costs a
/// few forwards whatever the number of sites.
/// </summary>
public static class InterventionsBench
{
    /// <summary>The prompt length the sweeps are timed at unless another is given.</summary>
    public const int DefaultLength = 32;

    public sealed record Row(
        string Model,
        int Layers,
        string Sweep,
        int Tokens,
        long Sites,
        double ForwardMs,
        double SweepMs
    )
    {
        public double Ratio => SweepMs / ForwardMs;

        /// <summary>The sweep's cost in forwards when every site ran its own forward.</summary>
        public long NaiveForwards => Sites;
    }

    /// <summary>
    /// The minis (residual sweep on the 30-layer mini, head sweeps on both, attribution on the 30-layer one) and, with
    /// <paramref name="weights"/>, attribution patching on that checkpoint, resident or <paramref name="streamed"/>
    /// (its forward then streamed too: the ratio is to the streamed forward).
    /// </summary>
    public static IReadOnlyList<Row> Run(string? weights, bool streamed, int length, int repeats, TextWriter output)
    {
        var rows = new List<Row>();
        using (var mini7 = LiveModel.Mini(MiniPresets.DeepSeek7BMini))
        {
            var problem = Problem(mini7.Spec, length);
            rows.Add(
                Measure(
                    mini7.Decoder,
                    problem,
                    "residual (exact)",
                    (long)(mini7.Spec.Layers + 1) * length,
                    repeats,
                    () => Sweeps.ResidualPatching(mini7.Decoder, problem),
                    output
                )
            );
            rows.Add(
                Measure(
                    mini7.Decoder,
                    problem,
                    "heads (zero ablation)",
                    (long)mini7.Spec.Layers * mini7.Spec.AttentionHeads,
                    repeats,
                    () => Sweeps.HeadAblation(mini7.Decoder, problem),
                    output
                )
            );
            rows.Add(
                Measure(
                    mini7.Decoder,
                    problem,
                    "residual (attribution)",
                    (long)(mini7.Spec.Layers + 1) * length,
                    repeats,
                    () => Sweeps.ResidualAttribution(mini7.Decoder, problem),
                    output
                )
            );
        }
        using (var mini67 = LiveModel.Mini(MiniPresets.DeepSeek67BMini))
        {
            var problem = Problem(mini67.Spec, length);
            rows.Add(
                Measure(
                    mini67.Decoder,
                    problem,
                    "heads (zero ablation)",
                    (long)mini67.Spec.Layers * mini67.Spec.AttentionHeads,
                    repeats,
                    () => Sweeps.HeadAblation(mini67.Decoder, problem),
                    output
                )
            );
        }
        if (weights is not null)
        {
            output.WriteLine($"loading {weights} {(streamed ? "streamed" : "resident")}…");
            using var live = LiveModel.FromCheckpoint(weights, "cpu", streamed: streamed);
            if (length > live.Spec.ContextLength)
                throw new ArgumentException(
                    $"--lengths {length}: over {live.Name}'s context of {live.Spec.ContextLength}."
                );
            var problem = Problem(live.Spec, length);
            rows.Add(
                Measure(
                    live.Decoder,
                    problem,
                    streamed ? "residual (attribution), streamed" : "residual (attribution)",
                    (long)(live.Spec.Layers + 1) * length,
                    Math.Min(repeats, 3),
                    () => Sweeps.ResidualAttribution(live.Decoder, problem),
                    output
                )
            );
        }
        return rows;
    }

    /// <summary>
    /// A repeated random sequence (its induction answer at the end) and the same with one token of the first copy
    /// changed: the shape of the page's default problem at any length.
    /// </summary>
    public static PatchingProblem Problem(ModelSpec spec, int length)
    {
        if (length < 4 || length % 2 != 0)
            throw new ArgumentException(
                $"--lengths {length}: the interventions suite takes an even length of at least 4 (a sequence repeated)."
            );
        // n random tokens twice (2n = length + 2), cut to length: the prompt ends at the copy of position n − 3, whose
        // next token (position n − 2) is the induction answer; the corruption changes that token in the first copy.
        var n = length / 2 + 1;
        var sequence = AttentionProbe.RepeatedTokens(n, spec.VocabularySize);
        var clean = sequence[..length];
        var corrupted = (int[])clean.Clone();
        var changed = n - 2;
        corrupted[changed] = clean[changed] == 300 ? 301 : 300;
        return new PatchingProblem(clean, corrupted, clean[changed], corrupted[changed]);
    }

    private static Row Measure(
        Decoder decoder,
        PatchingProblem problem,
        string sweep,
        long sites,
        int repeats,
        Action run,
        TextWriter output
    )
    {
        using var input = LiveModel.ToTensor(problem.Corrupted);
        double Forward()
        {
            using var noGrad = TorchSharp.torch.no_grad();
            return Timing.Milliseconds(() => decoder.Logits(input).Dispose()); // streamed too when the decoder is
        }
        Forward(); // warm
        run();
        // Forward and sweep alternate, so a slow spell of the machine hits both sides of the ratio alike.
        var pairs = Enumerable
            .Range(0, repeats)
            .Select(_ => (Forward: Forward(), Sweep: Timing.Milliseconds(run)))
            .ToArray();
        var row = new Row(
            decoder.Spec.Name,
            decoder.Spec.Layers,
            sweep,
            problem.Length,
            sites,
            Timing.Median(pairs.Select(p => p.Forward)),
            Timing.Median(pairs.Select(p => p.Sweep))
        );
        output.WriteLine(
            $"  {row.Model, -22} {row.Sweep, -24} {row.Tokens, 4} tokens {row.Sites, 7:N0} sites: "
                + $"forward {row.ForwardMs, 8:0.0} ms, "
                + $"sweep {row.SweepMs, 10:0.0} ms = {row.Ratio, 7:0.0}× a forward (one forward per site: "
                + $"{row.NaiveForwards:N0}×)"
        );
        return row;
    }

    public static void WriteJson(IReadOnlyList<Row> rows, string path) =>
        File.WriteAllText(
            path,
            JsonSerializer.Serialize(
                rows.Select(r => new
                {
                    r.Model,
                    r.Layers,
                    r.Sweep,
                    r.Tokens,
                    r.Sites,
                    r.ForwardMs,
                    r.SweepMs,
                    r.Ratio,
                }),
                CliOutput.Report
            )
        );
}
