using Explorer.Core.Accounting;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

public class ShapeAlternativesTests
{
    [Fact]
    public void FixedHiddenAtTheBaseDepthGivesBackTheBaseFfn()
    {
        var spec = ModelPresets.DeepSeekLlm67B;
        var total = ParameterBreakdown.Of(spec).Total;
        var same = ShapeAlternatives.For(spec, total, ShapeFamily.FixedHidden).Single(a => a.Spec.Layers == 95);
        Assert.Equal(22016, same.Spec.IntermediateSize);
        Assert.Equal(total, same.Parameters);
    }

    [Fact]
    public void FixedHiddenTradesDepthForFfnWidthWithinRounding()
    {
        // At the 67B's budget, 80 layers of d = 8192 need a wider FFN, as LLaMA-2-70B has (28672).
        var spec = ModelPresets.DeepSeekLlm67B;
        var total = ParameterBreakdown.Of(spec).Total;
        var alternatives = ShapeAlternatives.For(spec, total, ShapeFamily.FixedHidden);
        var eighty = alternatives.Single(a => a.Spec.Layers == 80);
        // Budget per layer: (total − 2·V·d − d)/80 − (attention + norms), over 3·d.
        double ffn =
            ((total - 2.0 * 102400 * 8192 - 8192) / 80 - (2.0 * 8192 * 8192 + 2.0 * 8192 * 1024 + 2 * 8192))
            / (3 * 8192);
        Assert.InRange(eighty.Spec.IntermediateSize, ffn - 128, ffn + 128);
        Assert.True(eighty.Spec.IntermediateSize > 22016);
        foreach (var a in alternatives)
        {
            // Rounding the FFN to 256 moves each layer by at most 128·3·d parameters.
            Assert.InRange(Math.Abs(a.Parameters - total), 0, 128L * 3 * 8192 * a.Spec.Layers);
            Assert.Equal(8192, a.Spec.HiddenSize);
        }
    }

    [Fact]
    public void DeeperIsNarrowerAtFixedAspect()
    {
        var spec = ModelPresets.DeepSeekLlm7B;
        var alternatives = ShapeAlternatives.For(spec, ParameterBreakdown.Of(spec).Total, ShapeFamily.FixedAspect);
        Assert.Equal(4096, alternatives.Single(a => a.Spec.Layers == 30).Spec.HiddenSize);
        var widths = alternatives.Select(a => a.Spec.HiddenSize).ToArray();
        Assert.Equal(widths.OrderDescending(), widths);
        Assert.All(alternatives, a => Assert.Empty(SpecValidator.Validate(a.Spec)));
        Assert.All(alternatives, a => Assert.InRange(a.BudgetDeviation, -0.15, 0.15));
    }

    [Fact]
    public void StageSplitsShowTheHeadMakingThe67BDivisible()
    {
        // 95 layers split unevenly; with the LM head counted as ≈1 layer, 96 splits evenly into 2, 4, 8, 16.
        var spec = ModelPresets.DeepSeekLlm67B;
        var a = ShapeAlternatives
            .For(spec, ParameterBreakdown.Of(spec).Total, ShapeFamily.FixedHidden)
            .Single(x => x.Spec.Layers == 95);
        Assert.All(a.Splits, s => Assert.False(s.IsEven));
        Assert.All(a.SplitsWithHead, s => Assert.True(s.IsEven));
    }

    [Theory]
    [InlineData(30, 4, "7–8", 7, 8)]
    [InlineData(96, 16, "6", 6, 6)]
    [InlineData(3, 4, "empty stages", 0, 1)]
    public void StageSplitDealsLayers(int layers, int stages, string text, int fewest, int most)
    {
        var split = new EvenSplit(layers, stages);
        Assert.Equal((text, fewest, most), (split.ToString(), split.Fewest, split.Most));
    }
}

public class SpecComparisonTests
{
    [Fact]
    public void GqaMakesThe67BKvCacheTheSmallerOneAndSaysSo()
    {
        var a = ArchitectureReport.Create(ModelPresets.DeepSeekLlm7B, 4096);
        var b = ArchitectureReport.Create(ModelPresets.DeepSeekLlm67B, 4096);
        var kv = SpecComparison.Facts(a, b).Single(f => f.Title == "KV cache per token");
        Assert.StartsWith("deepseek-llm-67b caches 380 KiB per token against 480 KiB for deepseek-llm-7b", kv.Detail);
        Assert.Contains("larger model", kv.Detail);
    }

    [Fact]
    public void HeadCountedAsLayersMakesEvenSplits()
    {
        var a = ArchitectureReport.Create(ModelPresets.DeepSeekLlm7B, 4096);
        var b = ArchitectureReport.Create(ModelPresets.DeepSeekLlm67B, 4096);
        var facts = SpecComparison.Facts(a, b);
        // 30 + 2 = 32 and 95 + 1 = 96 both divide by 2, 4, 8 and 16.
        Assert.Contains(
            "30 + 2 = 32 layers split evenly into 2, 4, 8, 16 stages (the 30 layers alone: 2)",
            facts.Single(f => f.Title == "Pipeline split of deepseek-llm-7b").Detail
        );
        Assert.Contains(
            "95 + 1 = 96 layers split evenly into 2, 4, 8, 16 stages (the 95 layers alone: none)",
            facts.Single(f => f.Title == "Pipeline split of deepseek-llm-67b").Detail
        );
    }
}
