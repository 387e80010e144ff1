using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Training;

namespace Explorer.Model.Tests;

/// <summary>
/// On the shipped trained minis: zeroing the best induction head (by the induction probe) lowers in-context copying
/// (the mean log-probability of the next token on the second copy of repeated random tokens: the in-context loss
/// with its sign turned) more than zeroing a random head does on average (8 heads drawn with a fixed seed).
/// </summary>
public sealed class InductionAblationTests(Xunit.Abstractions.ITestOutputHelper log)
{
    /// <summary>Mean log-probability of the next token over positions n…2n−2 (the repeat), over several
    /// sequences.</summary>
    private static double CopyScore(Decoder.Decoder decoder, Interventions interventions, int n = AttentionProbe.Length)
    {
        double sum = 0;
        var count = 0;
        for (var seed = 0; seed < 4; seed++)
        {
            var ids = AttentionProbe.RepeatedTokens(n, decoder.Spec.VocabularySize, seed: 100 + seed);
            using var input = LiveModel.ToTensor(ids);
            using var logits = decoder.Logits(input, interventions);
            using var logProbs = logits[0].log_softmax(-1).contiguous();
            var values = logProbs.data<float>().ToArray();
            var vocabulary = decoder.Spec.VocabularySize;
            for (var i = n; i < 2 * n - 1; i++, count++)
                sum += values[i * vocabulary + ids[i + 1]];
        }
        return sum / count;
    }

    [Theory]
    [InlineData("deepseek-7b-mini")]
    [InlineData("deepseek-67b-mini")]
    public void AblatingTheBestInductionHeadHurtsCopyingMoreThanAblatingARandomHead(string name)
    {
        var spec = MiniPresets.All.Single(s => s.Name == name);
        // the trained weights ship with the app; seeded ones have no induction head
        Assert.NotNull(TrainedDefaults.Find(spec));
        using var live = LiveModel.Mini(spec, device: "cpu");
        var scores = AttentionProbe.Measure(live.Decoder);
        var best = scores.MaxBy(s => s.Induction)!;
        var random = new Random(11);
        var others = scores.Where(s => s != best).OrderBy(_ => random.Next()).Take(8).ToArray();
        var plain = CopyScore(live.Decoder, Interventions.None);
        var withoutBest = CopyScore(
            live.Decoder,
            new Interventions { Heads = [(new HeadSite(best.Layer, best.Head), Ablation.Zero)] }
        );
        var withoutOthers = others
            .Select(o =>
                CopyScore(live.Decoder, new Interventions { Heads = [(new HeadSite(o.Layer, o.Head), Ablation.Zero)] })
            )
            .ToArray();
        var withoutRandom = withoutOthers.Average();
        log.WriteLine(
            $"{name}: mean log-prob of the repeat {plain:0.000}; best induction head "
                + $"{best.Layer + 1}.{best.Head} (probe {best.Induction:0.00}) zeroed: "
                + $"{withoutBest:0.000}; a random head zeroed: {withoutRandom:0.000} on average "
                + $"({string.Join(", ", others.Zip(withoutOthers, (o, v) => $"{o.Layer + 1}.{o.Head} {v:0.000}"))})"
        );
        Assert.True(
            plain - withoutBest > plain - withoutRandom,
            $"zeroing the best induction head cost {plain - withoutBest:0.000} nats, a random head "
                + $"{plain - withoutRandom:0.000} on average"
        );
    }
}
