using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

// Expected values are worked out by hand from the matrix shapes in each published config.json.
public class ParameterBreakdownTests
{
    [Fact]
    public void DeepSeek7BTotalMatchesHandCount()
    {
        // d = 4096, ffn = 11008, MHA: per layer 4·d² + 3·d·ffn + 2·d = 67,108,864 + 135,266,304 + 8,192.
        const long perLayer = 202_383_360;
        const long embedding = 102_400L * 4096; // 419,430,400
        var p = ParameterBreakdown.Of(ModelPresets.DeepSeekLlm7B);

        Assert.Equal(perLayer, p.PerLayer.Total);
        Assert.Equal(embedding, p.Embedding);
        Assert.Equal(embedding, p.LmHead);
        Assert.Equal(4096, p.FinalNorm);
        Assert.Equal(6_910_365_696L, p.Total);
        Assert.Equal(30 * perLayer + 2 * embedding + 4096, p.Total);
    }

    [Fact]
    public void DeepSeek67BTotalMatchesHandCountWithGqa()
    {
        // d = 8192, 64 heads of 128, 8 KV heads: k and v are 8192 × 1024.
        var p = ParameterBreakdown.Of(ModelPresets.DeepSeekLlm67B);
        Assert.Equal(8192L * 8192, p.PerLayer.Query);
        Assert.Equal(8192L * 1024, p.PerLayer.Key);
        Assert.Equal(8192L * 1024, p.PerLayer.Value);
        Assert.Equal(8192L * 8192, p.PerLayer.Output);
        Assert.Equal(8192L * 22016, p.PerLayer.Gate);
        Assert.Equal(8192L * 22016, p.PerLayer.Up);
        Assert.Equal(22016L * 8192, p.PerLayer.Down);
        Assert.Equal(8192, p.PerLayer.AttentionNorm);
        Assert.Equal(8192, p.PerLayer.FfnNorm);
        Assert.Equal(692_076_544L, p.PerLayer.Total);
        Assert.Equal(67_425_001_472L, p.Total);
    }

    [Theory]
    [InlineData("llama-2-7b", 6_738_415_616L)] // the count Meta's model card rounds to 6.7B
    [InlineData("llama-2-70b", 68_976_648_192L)] // ... and to 69B
    public void LlamaTwoTotalsMatchPublishedCounts(string name, long expected) =>
        Assert.Equal(expected, ParameterBreakdown.Of(ModelPresets.Get(name)).Total);

    [Fact]
    public void TiedEmbeddingsCountTheMatrixOnce()
    {
        var tied = ModelPresets.DeepSeekLlm7B with { TiedEmbeddings = true };
        Assert.Equal(0, ParameterBreakdown.Of(tied).LmHead);
        Assert.Equal(6_910_365_696L - 419_430_400L, ParameterBreakdown.Of(tied).Total);
    }

    [Fact]
    public void GeluFfnHasNoGate()
    {
        var gelu = ModelPresets.DeepSeekLlm7B with { FfnKind = FfnKind.Gelu };
        var layer = ParameterBreakdown.Of(gelu).PerLayer;
        Assert.Equal(0, layer.Gate);
        Assert.Equal(4L * 4096 * 4096 + 2L * 4096 * 11008 + 2 * 4096, layer.Total);
    }

    [Theory]
    [InlineData("deepseek-llm-7b", 2.07)] // REFERENCE.md: the 7B head ≈ 2.07 layers
    [InlineData("deepseek-llm-67b", 1.21)] // and the 67B head ≈ 1.21 layers
    public void LmHeadInLayerEquivalents(string name, double expected)
    {
        var report = ArchitectureReport.Create(ModelPresets.Get(name), 4096);
        Assert.Equal(expected, report.LayerEquivalents.HeadByParameters, 2);
        Assert.Equal(expected, report.LayerEquivalents.EmbeddingByParameters, 2);
    }

    [Fact]
    public void InvalidSpecIsRefused() =>
        Assert.Throws<SpecValidationException>(() =>
            ParameterBreakdown.Of(ModelPresets.DeepSeekLlm7B with { AttentionHeads = 33 })
        );
}
