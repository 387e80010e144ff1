using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

public class FlopCountTests
{
    [Theory]
    // DeepSeek LLM Table 3 rows (l_seq = 4096): 32 × 4096 → M = 45.1B; 80 × 8192 → M = 419B.
    [InlineData(32, 4096, 45.1e9, 0.05e9)]
    [InlineData(80, 8192, 419e9, 0.5e9)]
    public void DeepSeekMReproducesThePaperTable(int layers, int hidden, double expected, double tolerance)
    {
        var spec = new ModelSpec("t", layers, hidden, hidden * 8 / 3, hidden / 128, hidden / 128, 102400, 4096);
        Assert.InRange(FlopCount.DeepSeekM(spec, 4096), expected - tolerance, expected + tolerance);
    }

    [Fact]
    public void DeepSeekMMatchesFormulaTermByTerm()
    {
        long n = 95,
            d = 8192,
            l = 4096;
        Assert.Equal(72 * n * d * d + 12 * n * d * l, FlopCount.DeepSeekM(ModelPresets.DeepSeekLlm67B, 4096));
    }

    [Fact]
    public void CausalAttentionAveragesOverPositionsByBruteForce()
    {
        // Query at position i (1-based) attends to i keys: QKᵀ and AV cost 2·d·i FLOPs each.
        var spec = ModelPresets.DeepSeekLlm7B;
        foreach (var s in new[] { 1, 2, 7, 128, 4096 })
        {
            long total = 0;
            for (long i = 1; i <= s; i++)
                total += 2 * 2 * spec.HiddenSize * i;
            Assert.Equal(0, total % s);
            Assert.Equal(total / s, FlopCount.Of(spec, s).LayerAttention);
        }
    }

    [Fact]
    public void ForwardFlopsAreTwicePerMatmulWeightPlusAttention()
    {
        // Every weight except the embedding table and the norm gains is used once per token in a matmul.
        const long total = 6_910_365_696L,
            embedding = 419_430_400L,
            norms = 30L * 2 * 4096 + 4096;
        const int s = 4096;
        long attention = 30L * 2 * 4096 * (s + 1);
        var flops = FlopCount.Of(ModelPresets.DeepSeekLlm7B, s);
        Assert.Equal(2 * (total - embedding - norms) + attention, flops.ForwardPerToken);
        Assert.Equal(3 * flops.ForwardPerToken, flops.TrainingPerToken);
        Assert.Equal(2L * 102400 * 4096, flops.LmHead);
    }

    [Fact]
    public void ExactMIsBelowDeepSeekMUnderGqa()
    {
        // 67B layer matmuls: q, o 2·d²; k, v 2·d·d/8; FFN 3·d·22016 — versus M's 24·d² per layer (forward).
        long d = 8192,
            l = 4096;
        long matmul = 2 * d * d + 2 * d * 1024 + 3 * d * 22016;
        long expected = 3 * 95 * (2 * matmul + 4 * d * l);
        var spec = ModelPresets.DeepSeekLlm67B;
        Assert.Equal(expected, FlopCount.ExactM(spec, 4096));
        Assert.True(FlopCount.DeepSeekM(spec, 4096) > FlopCount.ExactM(spec, 4096));
        var report = ArchitectureReport.Create(spec, 4096);
        Assert.InRange(report.DeepSeekMError, 0.10, 0.20);
    }

    [Fact]
    public void ExactMNearlyEqualsDeepSeekMForMha()
    {
        // With MHA only the FFN width (11008 vs 8/3·4096 ≈ 10923) separates them.
        var report = ArchitectureReport.Create(ModelPresets.DeepSeekLlm7B, 4096);
        Assert.InRange(Math.Abs(report.DeepSeekMError), 0, 0.01);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void BadSequenceLengthIsRefusedWithItsValue(int s)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => FlopCount.Of(ModelPresets.DeepSeekLlm7B, s));
        Assert.Contains(s.ToString(), e.Message);
    }
}
