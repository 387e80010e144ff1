using Explorer.Model.Decoder;
using Explorer.Model.Patching;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>"Ablate this head": the before/after predictions and the KL, against torch's own softmax and KL.</summary>
public class AblationEffectTests
{
    private static readonly int[] Ids = [3, 17, 9, 25, 3, 17];

    [Fact]
    public void NothingAblatedChangesNothing()
    {
        using var decoder = TestModels.Build(TestModels.Small, seed: 5, std: 0.3);
        var effect = AblationEffect.Measure(decoder, Ids, Interventions.None, k: 4);
        Assert.Equal(effect.Before, effect.After);
        Assert.Equal(0, effect.KlFromClean, 9);
        Assert.Equal(effect.TopBefore, effect.TopAfter, 12);
    }

    [Fact]
    public void AHeadAblatedGivesTorchsSoftmaxAndKl()
    {
        using var decoder = TestModels.Build(TestModels.Small, seed: 5, std: 0.3);
        var ablated = new Interventions { Heads = [(new HeadSite(1, 2), Ablation.Zero)] };
        var effect = AblationEffect.Measure(decoder, Ids, ablated, k: 4);

        using var input = Explorer.Model.Hosting.LiveModel.ToTensor(Ids);
        using var plain = decoder.Logits(input, Interventions.None)[0, ^1].to(ScalarType.Float64);
        using var changed = decoder.Logits(input, ablated)[0, ^1].to(ScalarType.Float64);
        using var p = nn.functional.softmax(plain, 0);
        using var q = nn.functional.softmax(changed, 0);
        var kl = (p * (p.log() - q.log())).sum().item<double>();
        Assert.True(kl > 1e-6, $"zeroing a head of random weights moves the prediction ({kl})");
        Assert.Equal(kl, effect.KlFromClean, 6);

        // Top-k by torch: the same tokens, most likely first, with their probabilities.
        var (values, indices) = topk(q, 4);
        var tokens = indices.data<long>().Select(i => (int)i).ToArray();
        Assert.Equal(tokens, effect.After.Select(x => x.Token));
        Assert.Equal(
            values.data<double>().ToArray(),
            effect.After.Select(x => x.Probability),
            new ToleranceComparer(1e-6)
        );
        var top = effect.Before[0].Token;
        Assert.Equal(p[top].item<double>(), effect.TopBefore, 6);
        Assert.Equal(q[top].item<double>(), effect.TopAfter, 6);
    }

    [Fact]
    public void EveryHeadOfALayerZeroedIsItsAttentionZeroed()
    {
        // Two routes through the decoder: the heads' outputs before o_proj, and the attention branch after it (no
        // o_proj bias here, so both remove the whole branch).
        using var decoder = TestModels.Build(TestModels.Small, seed: 5, std: 0.3);
        var heads = new Interventions
        {
            Heads = Enumerable.Range(0, 4).Select(h => (new HeadSite(2, h), Ablation.Zero)).ToArray(),
        };
        var branch = new Interventions { Components = [(2, Component.Attention, Ablation.Zero)] };
        var a = AblationEffect.LastLogits(decoder, Ids, heads);
        var b = AblationEffect.LastLogits(decoder, Ids, branch);
        Assert.Equal(b, a, new ToleranceComparer(1e-4));
    }

    [Fact]
    public void ASiteOutOfRangeIsRefusedNamingIt()
    {
        using var decoder = TestModels.Build(TestModels.Small, seed: 5, std: 0.3);
        var bad = new Interventions { Heads = [(new HeadSite(1, 9), Ablation.Zero)] };
        var e = Assert.ThrowsAny<ArgumentException>(() => AblationEffect.Measure(decoder, Ids, bad));
        Assert.Contains("9", e.Message);
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>, IEqualityComparer<float>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;

        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(double obj) => 0;

        public int GetHashCode(float obj) => 0;
    }
}
