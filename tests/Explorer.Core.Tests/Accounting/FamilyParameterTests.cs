using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

/// <summary>
/// Parameter counts of the other open families against the figures their authors publish: exact where a count is
/// published to the parameter (the Hugging Face model cards' and the figures), to the published precision where
/// only a rounded figure is (a model's name, a report's table).
/// </summary>
public class FamilyParameterTests
{
    private static string DataFile(string name) => Path.Combine(AppContext.BaseDirectory, "Data", name);

    [Theory]
    [InlineData("Llama-3.1-8B.config.json", "llama-3.1-8b", 8_030_261_248L)]
    [InlineData("Qwen2.5-7B.config.json", "qwen2.5-7b", 7_615_616_512L)]
    [InlineData("Mistral-7B-v0.1.config.json", "mistral-7b", 7_241_732_096L)]
    public void PublishedConfigsReadAsThePresetsWithThePublishedCount(string file, string preset, long published)
    {
        var result = HfConfigReader.ReadFile(DataFile(file));
        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Empty(result.Warnings);
        Assert.Equal(ModelPresets.Get(preset) with { Name = "x" }, result.Spec! with { Name = "x" });
        Assert.Equal(published, ParameterBreakdown.Of(result.Spec!).Total);
    }

    [Fact]
    public void Qwen25BiasesAreCountedOnQueryKeyAndValueOnly()
    {
        // d = 3584, 28 heads of 128, 4 KV heads: biases 3584 + 512 + 512 per layer, none on o_proj.
        var p = ParameterBreakdown.Of(ModelPresets.Qwen25_7B);
        Assert.Equal(3584 + 2 * 512, p.PerLayer.Biases);
        Assert.Equal(3584L * 3584, p.PerLayer.Output);
    }

    [Fact]
    public void GemmaNonEmbeddingCountIsTheGemmaReportsFigure()
    {
        // Gemma report (arXiv 2403.08295), Table 1: 7B non-embedding parameters 7,751,248,896. head_dim 256 over
        // d = 3072: q, k, v are 4096 × 3072, o is 3072 × 4096.
        var p = ParameterBreakdown.Of(ModelPresets.Gemma7B);
        Assert.Equal(7_751_248_896L, p.NonEmbedding);
        Assert.Equal(3072L * 4096, p.PerLayer.Output);
        Assert.Equal(0, p.LmHead); // tied
    }

    [Theory]
    [InlineData("llama-3.1-70b", 70.6, 1)] // "70B" in name; 70.6B on the model card
    [InlineData("llama-3.1-405b", 406, 0)] // 405B in name; 405.9B counted: the card rounds down
    [InlineData("qwen2.5-72b", 72.7, 1)] // Qwen2.5 report, Table 1: 72.7B
    [InlineData("phi-3-mini", 3.8, 1)] // Phi-3 report: 3.8B
    [InlineData("qwen3-8b", 8.2, 1)] // Qwen3 report, Table 1: 8.2B
    [InlineData("olmo-2-7b", 7.3, 1)] // OLMo 2 report: 7.3B
    public void LargerFamiliesMatchTheirPublishedRoundedCounts(string preset, double billions, int digits) =>
        Assert.Equal(billions, Math.Round(ParameterBreakdown.Of(ModelPresets.Get(preset)).Total / 1e9, digits));

    [Fact]
    public void Qwen3NonEmbeddingCountIsTheReportsFigure()
    {
        // Qwen3 report, Table 1: 8B has 6.95B non-embedding parameters; q_norm and k_norm are 128 each per layer.
        var p = ParameterBreakdown.Of(ModelPresets.Qwen3_8B);
        Assert.Equal(6.95, Math.Round(p.NonEmbedding / 1e9, 2));
        Assert.Equal(2 * 128, p.PerLayer.QkNorms);
        Assert.Equal(4096L * 32 * 128, p.PerLayer.Query);
    }

    [Fact]
    public void Olmo2QkNormsSpanAllHeads()
    {
        var p = ParameterBreakdown.Of(ModelPresets.Olmo2_7B);
        Assert.Equal(4096 + 4096, p.PerLayer.QkNorms);
    }

    [Fact]
    public void AttentionFlopsUseHeadsTimesHeadDim()
    {
        // Gemma's 16 heads of 256 = 4096 ≠ d = 3072: QKᵀ and AV cost 2·4096·(s + 1) per token and layer.
        var flops = FlopCount.Of(ModelPresets.Gemma7B, 1024);
        Assert.Equal(2L * 4096 * 1025, flops.LayerAttention);
    }

    [Fact]
    public void DesignSummaryNamesWhatDiffersFromLlama()
    {
        Assert.Equal("plain LLaMA design", DesignSummary.Features(ModelPresets.DeepSeekLlm7B));
        Assert.Equal("q/k/v biases", DesignSummary.Features(ModelPresets.Qwen25_7B));
        Assert.Equal("llama3 rope ×8", DesignSummary.Features(ModelPresets.Llama31_8B));
        Assert.Equal(
            "head_dim 256 · GeGLU (tanh) · RMSNorm (1 + w) · embeddings × √d · tied head",
            DesignSummary.Features(ModelPresets.Gemma7B)
        );
        Assert.Equal("fused qkv and gate_up · window 2,047", DesignSummary.Features(ModelPresets.Phi3Mini));
        Assert.StartsWith(
            "Mistral: 32 layers, d = 4096, 32/8 heads, vocab 32,000; window 4,096",
            DesignSummary.Line(ModelPresets.Mistral7B)
        );
    }
}
