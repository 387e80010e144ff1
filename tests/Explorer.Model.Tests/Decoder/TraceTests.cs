using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public class TraceTests
{
    private static readonly long[] Prompt = [4, 8, 15, 16, 23, 42, 7, 9, 1, 3, 5, 2];

    private static DecoderTrace Traced(TraceOptions? options = null)
    {
        using var decoder = TestModels.Build(TestModels.Small);
        return decoder.Trace(TestModels.Tokens(Prompt), options ?? TraceOptions.Everything);
    }

    [Fact]
    public void AttentionRowsSumToOneAndAreCausal()
    {
        using var trace = Traced();
        int t = trace.Length;
        for (var layer = 0; layer < trace.Layers; layer++)
        for (var head = 0; head < trace.Spec.AttentionHeads; head++)
        {
            var map = trace.HeadMap(layer, head);
            Assert.Equal(t * t, map.Length);
            for (var i = 0; i < t; i++)
            {
                var row = map.AsSpan(i * t, t);
                Assert.InRange(row.ToArray().Sum(), 0.998, 1.002); // kept in fp16
                for (var j = i + 1; j < t; j++)
                    Assert.Equal(0f, row[j]);
            }
        }
    }

    [Fact]
    public void HeadSummariesMatchTheMapsByBruteForce()
    {
        using var trace = Traced();
        int t = trace.Length;
        for (var layer = 0; layer < trace.Layers; layer++)
        for (var head = 0; head < trace.Spec.AttentionHeads; head++)
        {
            var a = trace.HeadMap(layer, head);
            double sink = 0,
                previous = 0,
                entropy = 0;
            for (var i = 1; i < t; i++)
            {
                sink += a[i * t];
                previous += a[i * t + i - 1];
                double h = 0;
                for (var j = 0; j <= i; j++)
                    if (a[i * t + j] > 0)
                        h -= a[i * t + j] * Math.Log(a[i * t + j]);
                entropy += h / Math.Log(i + 1);
            }
            Assert.Equal(sink / (t - 1), trace.SinkMass![layer, head], 2);
            Assert.Equal(previous / (t - 1), trace.PreviousTokenScore![layer, head], 2);
            Assert.Equal(entropy / (t - 1), trace.HeadEntropy![layer, head], 2);
        }
    }

    [Fact]
    public void KvGroupFollowsGqa()
    {
        using var trace = Traced(); // 4 heads, 2 KV heads
        Assert.Equal([0, 0, 1, 1], Enumerable.Range(0, 4).Select(trace.KvGroup));
    }

    [Fact]
    public void ResidualStatisticsFollowTheirDefinitions()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(Prompt);
        using var trace = decoder.Trace(tokens, TraceOptions.Everything);
        // Row 0 is the embedding: ‖E[token]‖ computed from the table.
        var table = decoder.named_parameters().Single(p => p.name == "model.embed_tokens.weight").parameter;
        for (var i = 0; i < Prompt.Length; i++)
            Assert.Equal(table[Prompt[i]].norm().item<float>(), trace.ResidualNorm![0, i], 4);

        for (var l = 0; l < trace.Layers; l++)
        for (var i = 0; i < Prompt.Length; i++)
        {
            Assert.InRange(trace.BlockInfluence![l, i], -1e-6, 2);
            Assert.True(trace.RelativeUpdate![l, i] >= 0);
            // The update is the sum of the two contributions: ‖a + f‖ ≤ ‖a‖ + ‖f‖, relative to ‖h_in‖.
            var bound = (trace.AttentionNorm![l, i] + trace.FfnNorm![l, i]) / trace.ResidualNorm![l, i];
            Assert.True(trace.RelativeUpdate[l, i] <= bound * 1.0001);
        }
        Assert.Equal(trace.MeanResidualNorm(2) / trace.MeanResidualNorm(1), trace.GrowthRatio(1), 6);
    }

    [Fact]
    public void LastLayerLensIsTheFinalDistribution()
    {
        using var trace = Traced();
        var lens = trace.LogitLens!;
        int last = trace.Layers - 1;
        for (var j = 0; j < trace.LensPositions.Length; j++)
        {
            var position = trace.LensPositions[j];
            var logits = trace.LogitsAt(position);
            var argmax = Array.IndexOf(logits, logits.Max());
            Assert.Equal(argmax, lens[last, j].TopTokens[0]);
            Assert.InRange(lens[last, j].KlToFinal, 0, 1e-5);
            Assert.Equal(5, lens[last, j].TopTokens.Length);
            Assert.True(
                lens[last, j].TopProbabilities.Zip(lens[last, j].TopProbabilities.Skip(1), (a, b) => a >= b).All(x => x)
            );
            // Entropy of softmax(logits), computed here.
            var max = logits.Max();
            var z = logits.Sum(v => Math.Exp(v - max));
            var entropy = -logits.Sum(v =>
            {
                var p = Math.Exp(v - max) / z;
                return p * Math.Log(p);
            });
            Assert.Equal(entropy, lens[last, j].Entropy, 3);
        }
        Assert.Contains(Enumerable.Range(0, last), l => lens[l, 0].KlToFinal > 1e-4);
    }

    [Fact]
    public void ALensOverSeveralPositionBlocksPutsEachPositionInItsPlace()
    {
        // 300,000 tokens × 30 positions is 9M logits: more than one block (30 MiB of fp32), so positions 0–25 and
        // 26–29 are computed apart. At the last layer the lens is the model's own output at each position.
        var spec = new Explorer.Core.Specs.ModelSpec(
            "wide-vocab",
            Layers: 2,
            HiddenSize: 8,
            IntermediateSize: 16,
            AttentionHeads: 2,
            KeyValueHeads: 2,
            VocabularySize: 300_000,
            ContextLength: 64
        );
        using var decoder = TestModels.Build(spec, std: 0.5);
        using var trace = decoder.Trace(
            TestModels.Tokens(Enumerable.Range(0, 30).Select(i => (long)(i * 9973 % 300_000)).ToArray()),
            new TraceOptions { Attention = false }
        );
        for (var position = 0; position < 30; position++)
        {
            var logits = trace.LogitsAt(position);
            Assert.Equal(Array.IndexOf(logits, logits.Max()), trace.LogitLens![1, position].TopTokens[0]);
            Assert.InRange(trace.LogitLens[1, position].KlToFinal, 0, 1e-4);
        }
    }

    [Fact]
    public void LensPositionsCanBeChosenAndAreChecked()
    {
        using var trace = Traced(new TraceOptions { LensPositions = [11], TopK = 3 });
        Assert.Equal([11], trace.LensPositions);
        Assert.Equal(3, trace.LogitLens![0, 0].TopTokens.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => Traced(new TraceOptions { LensPositions = [12] }));
    }

    [Fact]
    public void ADeferredLensReadsTheLastPositionThenCompletesToTheLensTheForwardWouldHaveComputed()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(Prompt);
        using var eager = decoder.Trace(tokens, new TraceOptions { Attention = false }); // lens at every position
        using var views = decoder.Trace(tokens, TraceOptions.ForViews(Prompt.Length, attention: false));
        Assert.False(views.HasAttention);
        // No lens in the forward: the views read it after.
        Assert.Empty(views.LensPositions);
        Assert.Null(views.LogitLens);
        Assert.Equal(TimeSpan.Zero, views.LensTime);
        Assert.Equal(Enumerable.Range(0, Prompt.Length), views.DeferredLensPositions);
        Assert.Null(views.LastLens);
        Assert.Null(views.FullLens);
        // The kept states: L layers × 12 positions × d 32, in the model's fp32.
        Assert.Equal(3L * 12 * 32 * 4, views.DeferredLensBytes);
        var expected = eager.LogitLens!;
        // One position alone goes through a matmul of another shape than the batch: the same to float rounding.
        void AssertSame(LogitLensEntry want, LogitLensEntry got)
        {
            Assert.Equal(want.TopTokens, got.TopTokens);
            for (var k = 0; k < want.TopProbabilities.Length; k++)
                Assert.Equal(want.TopProbabilities[k], got.TopProbabilities[k], 1e-6);
            Assert.Equal(want.KlToFinal, got.KlToFinal, 6);
        }

        var last = views.ReadLastLens(decoder);
        Assert.Same(last, views.ReadLastLens(decoder)); // once
        Assert.Same(last, views.LastLens);
        Assert.True(views.LastLensTime > TimeSpan.Zero);
        Assert.Equal(1, last.GetLength(1));
        Assert.Equal(3L * 12 * 32 * 4, views.DeferredLensBytes); // the states stay for the rest
        for (var l = 0; l < views.Layers; l++)
            AssertSame(expected[l, Prompt.Length - 1], last[l, 0]);

        var full = views.CompleteLens(decoder);
        Assert.Same(full, views.CompleteLens(decoder)); // once
        Assert.Equal(0, views.DeferredLensBytes); // states freed
        for (var l = 0; l < views.Layers; l++)
        {
            for (var j = 0; j < Prompt.Length; j++)
                AssertSame(expected[l, j], full[l, j]);
            Assert.Same(last[l, 0], full[l, Prompt.Length - 1]); // read once, not again
        }
    }

    [Fact]
    public void ALensCompletedUnreadGivesItsLastPositionToo()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(Prompt);
        using var views = decoder.Trace(tokens, TraceOptions.ForViews(Prompt.Length, attention: false));
        var full = views.CompleteLens(decoder);
        var last = views.ReadLastLens(decoder); // from the full lens: the states are gone
        for (var l = 0; l < views.Layers; l++)
            Assert.Same(full[l, Prompt.Length - 1], last[l, 0]);
    }

    [Fact]
    public void AViewOfALongPromptDefersTheLensAtItsLast128Positions()
    {
        var options = TraceOptions.ForViews(300);
        Assert.True(options.Attention);
        Assert.False(options.LogitLens);
        Assert.Equal(Enumerable.Range(172, 128), options.DeferredLensPositions);
        Assert.Throws<InvalidOperationException>(() =>
            Traced(new TraceOptions()).CompleteLens(TestModels.Build(TestModels.Small))
        );
        Assert.Throws<InvalidOperationException>(() =>
            Traced(new TraceOptions()).ReadLastLens(TestModels.Build(TestModels.Small))
        );
    }

    [Fact]
    public void NothingKeptMeansNoMapsAndTheFusedPath()
    {
        using var trace = Traced(TraceOptions.Nothing);
        Assert.False(trace.HasAttention);
        Assert.Null(trace.ResidualNorm);
        Assert.Throws<InvalidOperationException>(() => trace.HeadMap(0, 0));
        Assert.Equal(0, trace.AttentionBytes);
    }

    [Fact]
    public void HeadMapChecksItsArguments()
    {
        using var trace = Traced();
        Assert.Throws<ArgumentOutOfRangeException>(() => trace.HeadMap(3, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => trace.HeadMap(0, 4));
        Assert.Equal(3L * 4 * 12 * 12 * 2, trace.AttentionBytes); // fp16 maps
    }
}
