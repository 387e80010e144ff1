using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Patching;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>
/// The sweeps (which run from the states below each change, batched) against the brute force: a whole forward with the
/// same intervention for every site, and the cells whose value follows from the definition alone.
/// </summary>
public class SweepTests
{
    // GQA, a window of 3 from layer 1 on, biases: the sweeps go through everything a family adds.
    private static readonly ModelSpec Spec = new(
        "sweep",
        Layers: 3,
        HiddenSize: 32,
        IntermediateSize: 48,
        AttentionHeads: 4,
        KeyValueHeads: 2,
        VocabularySize: 40,
        ContextLength: 64,
        Family: ModelFamily.Qwen2,
        AttentionBias: AttentionBias.QueryKeyValue,
        SlidingWindow: 3,
        FirstSlidingLayer: 1
    );

    private static readonly PatchingProblem Problem = new(
        [3, 17, 9, 25, 3, 17, 9],
        [3, 17, 30, 25, 3, 17, 9],
        Answer: 25,
        Wrong: 11
    );

    private static float[] LastLogits(Decoder.Decoder decoder, int[] ids, Interventions interventions)
    {
        using var input = Explorer.Model.Hosting.LiveModel.ToTensor(ids);
        using var logits = decoder.Logits(input, interventions);
        return TestModels.ToArray(logits[0, ^1]);
    }

    private static double Difference(float[] logits) => logits[Problem.Answer] - logits[Problem.Wrong];

    [Fact]
    public void ResidualPatchingEqualsAWholeForwardPerSite()
    {
        using var decoder = TestModels.Build(Spec, seed: 3, std: 0.3);
        var sweep = Sweeps.ResidualPatching(decoder, Problem);
        var clean = Difference(LastLogits(decoder, Problem.Clean, Interventions.None));
        var corrupted = Difference(LastLogits(decoder, Problem.Corrupted, Interventions.None));
        Assert.Equal(clean, sweep.Clean, 4);
        Assert.Equal(corrupted, sweep.Corrupted, 4);
        using var input = Explorer.Model.Hosting.LiveModel.ToTensor(Problem.Clean);
        using var states = decoder.ResidualStates(input);
        for (var b = 0; b <= Spec.Layers; b++)
        for (var p = 0; p < Problem.Length; p++)
        {
            var patch = new ResidualPatch(b, p, TestModels.ToArray(states[b, p]));
            var patched = Difference(LastLogits(decoder, Problem.Corrupted, new Interventions { Patches = [patch] }));
            Assert.Equal((patched - corrupted) / (clean - corrupted), sweep.Values[b, p], 3);
        }
        // From the definition: after the last layer only the last position reaches the prediction, in full; at the
        // embedding, a position whose token the corruption did not change restores nothing.
        for (var p = 0; p < Problem.Length; p++)
        {
            Assert.Equal(p == Problem.Length - 1 ? 1.0 : 0.0, sweep.Values[Spec.Layers, p], 5);
            if (Problem.Clean[p] == Problem.Corrupted[p])
                Assert.Equal(0.0, sweep.Values[0, p], 5);
        }
        Assert.True(Math.Abs(sweep.Values[0, 2]) > 1e-3, "patching the changed token's embedding must move the answer");
    }

    [Theory]
    [InlineData(Ablation.Zero)]
    [InlineData(Ablation.Mean)]
    public void HeadAblationEqualsAWholeForwardPerHead(Ablation kind)
    {
        // The sweep runs each layer's H ablations as one batch, row h with head h ablated; the brute force, one forward
        // each.
        using var decoder = TestModels.Build(Spec, seed: 4, std: 0.3);
        var sweep = Sweeps.HeadAblation(decoder, Problem, kind);
        var clean = Difference(LastLogits(decoder, Problem.Clean, Interventions.None));
        for (var l = 0; l < Spec.Layers; l++)
        for (var h = 0; h < Spec.AttentionHeads; h++)
        {
            var ablated = Difference(
                LastLogits(decoder, Problem.Clean, new Interventions { Heads = [(new HeadSite(l, h), kind)] })
            );
            Assert.Equal(ablated - clean, sweep.Values[l, h], 4);
        }
        Assert.Contains(Enumerable.Range(0, Spec.Layers * Spec.AttentionHeads), i =>
            Math.Abs(sweep.Values[i / 4, i % 4]) > 1e-3
        );
    }

    [Fact]
    public void HeadPatchingEqualsAWholeForwardPerHead()
    {
        // The sweep batches a layer's H patches from the corrupted states below it; the brute force runs the public
        // head patch (the clean run's output of that head) through a whole corrupted forward, one per head.
        using var decoder = TestModels.Build(Spec, seed: 4, std: 0.3);
        var sweep = Sweeps.HeadPatching(decoder, Problem);
        var clean = Difference(LastLogits(decoder, Problem.Clean, Interventions.None));
        var corrupted = Difference(LastLogits(decoder, Problem.Corrupted, Interventions.None));
        using var sources = HeadContexts.Of(decoder, Problem.Clean);
        for (var l = 0; l < Spec.Layers; l++)
        for (var h = 0; h < Spec.AttentionHeads; h++)
        {
            var patch = HeadContexts.Patch(sources, new HeadSite(l, h));
            var patched = Difference(
                LastLogits(decoder, Problem.Corrupted, new Interventions { HeadPatches = [patch] })
            );
            Assert.Equal((patched - corrupted) / (clean - corrupted), sweep.Values[l, h], 3);
        }
        Assert.Contains(Enumerable.Range(0, Spec.Layers * Spec.AttentionHeads), i =>
            Math.Abs(sweep.Values[i / 4, i % 4]) > 1e-3
        );
    }

    [Fact]
    public void AHeadPatchOfZerosOrOfTheReferenceMeanIsThatAblation()
    {
        using var decoder = TestModels.Build(Spec, seed: 4, std: 0.3);
        var site = new HeadSite(1, 3);
        using var own = HeadContexts.Of(decoder, Problem.Clean);
        int t = Problem.Length,
            hd = Spec.HeadDim;
        // Zeros: zero ablation. The prompt's own mean as the reference: mean ablation over the prompt.
        Assert.Equal(
            LastLogits(decoder, Problem.Clean, new Interventions { Heads = [(site, Ablation.Zero)] }),
            LastLogits(
                decoder,
                Problem.Clean,
                new Interventions { HeadPatches = [new HeadPatch(site, new float[t * hd])] }
            ),
            new Close(1e-5)
        );
        Assert.Equal(
            LastLogits(decoder, Problem.Clean, new Interventions { Heads = [(site, Ablation.Mean)] }),
            LastLogits(
                decoder,
                Problem.Clean,
                new Interventions { HeadPatches = [HeadContexts.MeanPatch(own, site, t)] }
            ),
            new Close(1e-5)
        );
        // The run's own output of the head changes nothing.
        Assert.Equal(
            LastLogits(decoder, Problem.Clean, Interventions.None),
            LastLogits(decoder, Problem.Clean, new Interventions { HeadPatches = [HeadContexts.Patch(own, site)] }),
            new Close(1e-5)
        );
        // A reference prompt of another length gives a mean for this one's positions.
        using var reference = HeadContexts.Of(decoder, [1, 2, 3]);
        Assert.Equal(t * hd, HeadContexts.MeanPatch(reference, site, t).Value.Length);
        // A value of the wrong size is refused, naming both sizes.
        var e = Assert.Throws<ArgumentException>(() =>
            LastLogits(decoder, Problem.Clean, new Interventions { HeadPatches = [new HeadPatch(site, new float[5])] })
        );
        Assert.Contains($"{t} positions × head_dim {hd} = {t * hd}", e.Message);
    }

    private sealed class Close(double tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance * Math.Max(1, Math.Abs(x));

        public int GetHashCode(float obj) => 0;
    }

    [Fact]
    public void LayerRemovalEqualsAWholeForwardWithTheLayerSkipped()
    {
        using var decoder = TestModels.Build(Spec, seed: 5, std: 0.3);
        var progress = new List<double>();
        var sweep = Sweeps.LayerRemoval(decoder, Problem, new SyncProgress<double>(progress.Add));
        var clean = Difference(LastLogits(decoder, Problem.Clean, Interventions.None));
        for (var l = 0; l < Spec.Layers; l++)
            Assert.Equal(
                Difference(LastLogits(decoder, Problem.Clean, new Interventions { SkippedLayers = [l] })) - clean,
                sweep.Values[l, 0],
                4
            );
        Assert.Equal([1.0 / 3, 2.0 / 3, 1.0], progress, (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void ASweepCanBeCancelled()
    {
        using var decoder = TestModels.Build(Spec);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Sweeps.HeadAblation(decoder, Problem, cancellation: cancel.Token)
        );
    }

    [Theory]
    [InlineData(new[] { 1, 2 }, new[] { 1, 2, 3 }, 4, 5, "The corrupted prompt has 3 tokens and the clean one 2")]
    [InlineData(new[] { 1, 2 }, new[] { 1, 3 }, 40, 5, "The answer 40 is outside the vocabulary [0, 40)")]
    [InlineData(new[] { 1, 2 }, new[] { 1, 3 }, 4, -1, "The wrong answer -1 is outside the vocabulary")]
    [InlineData(new[] { 1, 99 }, new[] { 1, 3 }, 4, 5, "The token 99 is outside the vocabulary")]
    [InlineData(new[] { 1, 2 }, new[] { 1, 3 }, 4, 4, "both token 4")]
    public void BadProblemsAreRefusedNamingTheValue(int[] clean, int[] corrupted, int answer, int wrong, string message)
    {
        using var decoder = TestModels.Build(Spec);
        var error = Assert.Throws<ArgumentException>(() =>
            Sweeps.LayerRemoval(decoder, new PatchingProblem(clean, corrupted, answer, wrong))
        );
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void MetricsFollowTheirDefinitions()
    {
        float[] p = [0f, MathF.Log(3)]; // softmax: 1/4, 3/4
        float[] q = [MathF.Log(3), 0f]; // 3/4, 1/4
        Assert.Equal(0.75, PatchingMetric.Probability(p, 1), 6);
        Assert.Equal(0.25 * Math.Log(0.25 / 0.75) + 0.75 * Math.Log(0.75 / 0.25), PatchingMetric.KlDivergence(p, q), 6);
        Assert.Equal(0, PatchingMetric.KlDivergence(p, p), 12);
        Assert.Equal(-Math.Log(3), PatchingMetric.LogitDifference(p, 0, 1), 6);
        Assert.Equal(0.25, PatchingMetric.NormalisedEffect(patched: 2, clean: 5, corrupted: 1));
        Assert.True(double.IsNaN(PatchingMetric.NormalisedEffect(1, 1, 1)));
    }

    [Fact]
    public void AttributionPatchingIsTheExactEffectToFirstOrder()
    {
        // A patch of ε·(clean − corrupted) at one site moves the metric by ε·(the attribution) plus O(ε²): the central
        // difference of two such exact patches, over 2ε, must equal the attribution estimate at every site.
        using var decoder = TestModels.Build(Spec, seed: 6, std: 0.3);
        var attribution = Sweeps.ResidualAttribution(decoder, Problem);
        var exact = Sweeps.ResidualPatching(decoder, Problem);
        Assert.Equal(exact.Clean, attribution.Clean, 4);
        Assert.Equal(exact.Corrupted, attribution.Corrupted, 4);
        var span = attribution.Clean - attribution.Corrupted;
        using var clean = Explorer.Model.Hosting.LiveModel.ToTensor(Problem.Clean);
        using var corrupted = Explorer.Model.Hosting.LiveModel.ToTensor(Problem.Corrupted);
        using var cleanStates = decoder.ResidualStates(clean);
        using var corruptedStates = decoder.ResidualStates(corrupted);
        const float epsilon = 0.02f;
        for (var b = 0; b <= Spec.Layers; b++)
        for (var p = 0; p < Problem.Length; p++)
        {
            var c = TestModels.ToArray(cleanStates[b, p]);
            var x = TestModels.ToArray(corruptedStates[b, p]);
            double At(float e) =>
                Difference(
                    LastLogits(
                        decoder,
                        Problem.Corrupted,
                        new Interventions
                        {
                            Patches = [new ResidualPatch(b, p, x.Select((v, i) => v + e * (c[i] - v)).ToArray())],
                        }
                    )
                );
            var slope = (At(epsilon) - At(-epsilon)) / (2 * epsilon);
            var estimate = attribution.Values[b, p] * span;
            Assert.True(
                Math.Abs(slope - estimate) <= 1e-2 * Math.Max(1, Math.Abs(slope)),
                $"after layer {b}, position {p}: attribution {estimate:0.0000}, exact slope {slope:0.0000}"
            );
        }
    }

    [Fact]
    public void RankCorrelationFollowsSpearmansDefinition()
    {
        Assert.Equal(
            1.0,
            Sweeps.RankCorrelation(
                new double[,]
                {
                    { 1, 2, 3 },
                },
                new double[,]
                {
                    { 10, 20, 300 },
                }
            ),
            12
        );
        Assert.Equal(
            -1.0,
            Sweeps.RankCorrelation(
                new double[,]
                {
                    { 1, 2, 3 },
                },
                new double[,]
                {
                    { 3, 2, 1 },
                }
            ),
            12
        );
        // Ranks (0, 1, 2, 3) against (1, 0, 3, 2): 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/60 = 0.6.
        Assert.Equal(
            0.6,
            Sweeps.RankCorrelation(
                new double[,]
                {
                    { 1, 2, 3, 4 },
                },
                new double[,]
                {
                    { 2, 1, 4, 3 },
                }
            ),
            12
        );
        // NaN sites (nothing to restore) are left out.
        Assert.Equal(
            1.0,
            Sweeps.RankCorrelation(
                new double[,]
                {
                    { 1, double.NaN, 3 },
                },
                new double[,]
                {
                    { 1, 5, 2 },
                }
            ),
            12
        );
    }

    [Fact]
    public void TheRemovalCurveRemovesLayersInOrderOfLeastBlockInfluence()
    {
        using var decoder = TestModels.Build(Spec, seed: 7, std: 0.3);
        var curve = Sweeps.LayerRemovalCurve(decoder, Problem);
        // The order, from the trace's block influence computed here by its definition: 1 − cos(h_l−1, h_l), mean over
        // positions 1…T−1.
        using var input = Explorer.Model.Hosting.LiveModel.ToTensor(Problem.Clean);
        using var states = decoder.ResidualStates(input);
        double Influence(int l) =>
            Enumerable
                .Range(1, Problem.Length - 1)
                .Average(p =>
                {
                    var a = TestModels.ToArray(states[l, p]);
                    var b = TestModels.ToArray(states[l + 1, p]);
                    var dot = a.Zip(b, (x, y) => (double)x * y).Sum();
                    return 1 - dot / Math.Sqrt(a.Sum(x => (double)x * x) * b.Sum(y => (double)y * y));
                });
        Assert.Equal(Enumerable.Range(0, Spec.Layers).OrderBy(Influence).ToArray(), curve.Order);
        Assert.Equal(Spec.Layers + 1, curve.Points.Count);
        var clean = LastLogits(decoder, Problem.Clean, Interventions.None);
        Assert.Equal(Difference(clean), curve.Points[0].Metric, 4);
        Assert.Equal(0, curve.Points[0].KlFromClean, 6);
        for (var k = 1; k <= Spec.Layers; k++)
        {
            var removed = LastLogits(
                decoder,
                Problem.Clean,
                new Interventions { SkippedLayers = curve.Order.Take(k).ToArray() }
            );
            Assert.Equal(Difference(removed), curve.Points[k].Metric, 4);
            Assert.Equal(PatchingMetric.KlDivergence(clean, removed), curve.Points[k].KlFromClean, 5);
            Assert.Equal((double)k / Spec.Layers, curve.Points[k].Fraction, 12);
            Assert.True(curve.Points[k].KlFromClean > 0);
        }
    }
}
