using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public class RotaryTests
{
    [Fact]
    public void ScoreDependsOnlyOnTheOffset()
    {
        const int headDim = 8,
            length = 40;
        var (cos, sin) = Rotary.Tables(length, headDim, 10000, CPU);
        var g = new Generator(3, CPU);
        var q = torch.randn([1, 1, 1, headDim], generator: g).expand(1, 1, length, headDim);
        var k = torch.randn([1, 1, 1, headDim], generator: g).expand(1, 1, length, headDim);
        var rq = Rotary.Apply(q, cos, sin)[0, 0];
        var rk = Rotary.Apply(k, cos, sin)[0, 0];
        float Score(int m, int n) => (rq[m] * rk[n]).sum().item<float>();

        foreach (var (m, n) in new[] { (5, 2), (9, 9), (3, 11) })
        foreach (var shift in new[] { 1, 7, 20 })
            Assert.Equal(Score(m, n), Score(m + shift, n + shift), 4);
        Assert.NotEqual(Score(5, 2), Score(5, 3), 3);
    }

    [Fact]
    public void PositionZeroIsTheIdentityAndHalvesRotateTogether()
    {
        var (cos, sin) = Rotary.Tables(3, 4, 10000, CPU);
        var x = torch.tensor(new float[] { 1, 2, 3, 4 }).view(1, 1, 1, 4).expand(1, 1, 3, 4);
        var y = Rotary.Apply(x, cos, sin)[0, 0];
        Assert.Equal(new float[] { 1, 2, 3, 4 }, TestModels.ToArray(y[0]));
        // Position 1, pair (x0, x2) rotates by angle 1 (inv_freq_0 = 1): out0 = x0·cos1 − x2·sin1.
        Assert.Equal(1 * Math.Cos(1) - 3 * Math.Sin(1), y[1, 0].item<float>(), 5);
        Assert.Equal(3 * Math.Cos(1) + 1 * Math.Sin(1), y[1, 2].item<float>(), 5);
        // Pair (x1, x3) rotates by inv_freq_1 = 10000^(−2/4) = 0.01.
        Assert.Equal(2 * Math.Cos(0.01) - 4 * Math.Sin(0.01), y[1, 1].item<float>(), 5);
    }

    [Fact]
    public void Olmo2RotatesBf16InFloat32AndRoundsOnce()
    {
        // OLMo 2: q·cos + rotate_half(q)·sin with cos, sin in fp32, then one rounding to bf16. Expected from doubles.
        const int headDim = 8,
            length = 64;
        var (cos, sin) = Rotary.Tables(length, headDim, 10000, CPU);
        var g = new Generator(4, CPU);
        using var x = torch.randn([1, 1, length, headDim], generator: g).mul_(8).to(ScalarType.BFloat16);
        var values = TestModels.ToArray(x);
        var c = TestModels.ToArray(cos);
        var s = TestModels.ToArray(sin);
        var expected = new float[values.Length];
        for (var p = 0; p < length; p++)
        for (var i = 0; i < headDim; i++)
        {
            var j = p * headDim + i;
            var rotated = i < headDim / 2 ? -values[j + headDim / 2] : values[j - headDim / 2];
            var exact = (double)values[j] * c[j] + (double)rotated * s[j];
            expected[j] = TestModels.ToArray(torch.tensor((float)exact).to(ScalarType.BFloat16))[0];
        }
        var inFloat32 = TestModels.ToArray(Rotary.Apply(x, cos, sin, inFloat32: true));
        Assert.Equal(expected, inFloat32);
        // LLaMA's way rounds cos and sin to bf16 first, and each product: not the same numbers.
        Assert.NotEqual(expected, TestModels.ToArray(Rotary.Apply(x, cos, sin)));
    }
}
