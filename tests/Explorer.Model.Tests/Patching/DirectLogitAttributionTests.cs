using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Patching;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>
/// Direct logit attribution against what defines it: the components sum to the logit difference, and one head's value
/// is its output (isolated by ablation with the MLP out of the way) read through the frozen final norm by hand.
/// </summary>
public class DirectLogitAttributionTests
{
    private static readonly int[] Ids = [3, 17, 9, 25, 3, 17, 9];

    public static TheoryData<string> Shapes => ["llama", "qwen2-biases-window", "o-bias-tied"];

    private static ModelSpec Shape(string name) =>
        name switch
        {
            "llama" => TestModels.Small,
            "qwen2-biases-window" => new ModelSpec(
                "qwen",
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
            ),
            _ => TestModels.Small with { Name = "obias", AttentionBias = AttentionBias.All, TiedEmbeddings = true },
        };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheComponentsSumToTheLogitDifference(string shape)
    {
        var spec = Shape(shape);
        using var decoder = TestModels.Build(spec, seed: 11, std: 0.3);
        using (no_grad())
            foreach (var (name, bias) in decoder.named_parameters().Where(p => p.name.EndsWith("o_proj.bias")))
                // biases start at zero
                bias.copy_(randn(bias.shape, generator: new TorchSharp.torch.Generator(5)) * 0.5);
        var dla = DirectLogitAttribution.Compute(decoder, Ids, answer: 25, wrong: 30);
        using var input = Explorer.Model.Hosting.LiveModel.ToTensor(Ids);
        using var logits = decoder.Logits(input);
        var last = TestModels.ToArray(logits[0, ^1]);
        Assert.Equal(last[25] - last[30], dla.Actual, 4);
        Assert.Equal(dla.Actual, dla.Total, 3);
        Assert.Equal((spec.Layers, spec.AttentionHeads), (dla.Heads.GetLength(0), dla.Heads.GetLength(1)));
        Assert.Equal(spec.AttentionBias == AttentionBias.All, dla.AttentionBias.Any(b => b != 0));
    }

    [Fact]
    public void AHeadIsItsOutputReadThroughTheFrozenNorm()
    {
        var spec = TestModels.Small;
        using var decoder = TestModels.Build(spec, seed: 11, std: 0.3);
        const int layer = 1,
            head = 2,
            answer = 25,
            wrong = 30;
        var dla = DirectLogitAttribution.Compute(decoder, Ids, answer, wrong);

        // With layer 1's MLP zeroed, zeroing head 2 as well changes the state after layer 1 by exactly that head's
        // output.
        float[] After(Interventions edits)
        {
            using var input = Explorer.Model.Hosting.LiveModel.ToTensor(Ids);
            float[]? state = null;
            using (no_grad())
                decoder
                    .Run(input, null, edits: edits, onResidual: (b, x) =>
                    {
                        if (b == layer + 1)
                            state = TestModels.ToArray(x[0, ^1]);
                        return x;
                    })
                    .Dispose();
            return state!;
        }
        var noMlp = new Interventions { Components = [(layer, Component.Mlp, Ablation.Zero)] };
        var withHead = After(noMlp);
        var withoutHead = After(noMlp with { Heads = [(new HeadSite(layer, head), Ablation.Zero)] });
        var output = withHead.Zip(withoutHead, (a, b) => (double)a - b).ToArray();

        // The plain run's final state gives the frozen 1/rms; then weight ⊙ (W_U[answer] − W_U[wrong]).
        using var input2 = Explorer.Model.Hosting.LiveModel.ToTensor(Ids);
        using var states = decoder.ResidualStates(input2);
        var final = TestModels.ToArray(states[spec.Layers, Ids.Length - 1]);
        var scale = 1 / Math.Sqrt(final.Average(v => (double)v * v) + spec.NormEpsilon);
        var parameters = decoder.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var gain = TestModels.ToArray(parameters["model.norm.weight"]);
        var unembedding = parameters["lm_head.weight"];
        var a = TestModels.ToArray(unembedding[answer]);
        var w = TestModels.ToArray(unembedding[wrong]);
        var expected = Enumerable.Range(0, spec.HiddenSize).Sum(i => output[i] * scale * gain[i] * (a[i] - w[i]));
        Assert.True(Math.Abs(expected) > 1e-4, $"the head moves the answer ({expected})");
        Assert.Equal(expected, dla.Heads[layer, head], 4);
    }

    [Fact]
    public void ABranchNormalisedAfterItRunsIsRefusedSayingWhy()
    {
        var spec = TestModels.Small with
        {
            Name = "olmo",
            Family = ModelFamily.Olmo2,
            NormPlacement = NormPlacement.BranchOutput,
        };
        using var decoder = TestModels.Build(spec);
        var e = Assert.Throws<InvalidOperationException>(() => DirectLogitAttribution.Compute(decoder, Ids, 1, 2));
        Assert.Contains("pre-norm", e.Message);
    }

    [Fact]
    public void AnAnswerOutsideTheVocabularyIsRefusedNamingIt()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var e = Assert.ThrowsAny<ArgumentException>(() => DirectLogitAttribution.Compute(decoder, Ids, 50, 2));
        Assert.Contains("50", e.Message);
    }
}
