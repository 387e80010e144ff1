using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

public class SpecValidatorTests
{
    private static readonly ModelSpec Good = ModelPresets.DeepSeekLlm7B;

    [Fact]
    public void PresetsAreValid()
    {
        foreach (var spec in ModelPresets.All)
            Assert.Empty(SpecValidator.Validate(spec));
    }

    public static TheoryData<ModelSpec, string, string> BadSpecs =>
        new()
        {
            { Good with { Layers = 0 }, "num_hidden_layers", "0" },
            { Good with { Layers = 5000 }, "num_hidden_layers", "5000" },
            { Good with { HiddenSize = -4096 }, "hidden_size", "-4096" },
            { Good with { IntermediateSize = 0 }, "intermediate_size", "0" },
            { Good with { AttentionHeads = 0 }, "num_attention_heads", "0" },
            { Good with { KeyValueHeads = 0 }, "num_key_value_heads", "0" },
            { Good with { VocabularySize = 0 }, "vocab_size", "0" },
            { Good with { ContextLength = 0 }, "max_position_embeddings", "0" },
            { Good with { AttentionHeads = 30, KeyValueHeads = 30 }, "num_attention_heads", "30" }, // 4096 % 30 != 0
            { Good with { HiddenSize = 4000 }, "num_attention_heads", "32" }, // head_dim 125 is odd
            { Good with { KeyValueHeads = 5 }, "num_key_value_heads", "5" }, // 32 % 5 != 0
            { Good with { RopeTheta = 0 }, "rope_theta", "0" },
            { Good with { RopeTheta = double.NaN }, "rope_theta", "NaN" },
            { Good with { NormEpsilon = 0 }, "rms_norm_eps", "0" },
            { Good with { NormEpsilon = 2 }, "rms_norm_eps", "2" },
            { Good with { Name = " " }, "name", "' '" },
            { Good with { NormPlacement = (NormPlacement)7 }, "norm_placement", "7" },
            { Good with { FfnKind = (FfnKind)9 }, "ffn_kind", "9" },
        };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public void EachErrorNamesTheFieldAndValue(ModelSpec spec, string field, string value)
    {
        var error = Assert.Single(SpecValidator.Validate(spec));
        Assert.Equal(field, error.Field);
        Assert.Equal(value, error.Value);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
        Assert.Contains(field, error.ToString());
    }

    [Fact]
    public void HeadsThatDoNotDivideHiddenSayWhy()
    {
        var error = Assert.Single(SpecValidator.Validate(Good with { AttentionHeads = 30, KeyValueHeads = 30 }));
        Assert.Contains("must divide hidden_size 4096", error.Message);
    }

    [Fact]
    public void AllErrorsAreReportedTogether()
    {
        var errors = SpecValidator.Validate(Good with { Layers = 0, VocabularySize = -1, NormEpsilon = 5 });
        Assert.Equal(["num_hidden_layers", "vocab_size", "rms_norm_eps"], errors.Select(e => e.Field));
        var e = Assert.Throws<SpecValidationException>(() => SpecValidator.EnsureValid(Good with { Layers = 0 }));
        Assert.Contains("num_hidden_layers = 0", e.Message);
    }

    [Fact]
    public void UnknownPresetListsKnownNames()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelPresets.Get("deepseek-llm-8b"));
        Assert.Contains("deepseek-llm-8b", e.Message);
        Assert.Contains("deepseek-llm-67b", e.Message);
    }
}
