using System.Text;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests;

public class HfConfigReaderTests
{
    private static string DataFile(string name) => Path.Combine(AppContext.BaseDirectory, "Data", name);

    [Theory]
    [InlineData("deepseek-llm-7b-base.config.json", "deepseek-llm-7b")]
    [InlineData("deepseek-llm-67b-base.config.json", "deepseek-llm-67b")]
    public void PublishedConfigsReadAsThePresets(string file, string preset)
    {
        var result = HfConfigReader.ReadFile(DataFile(file));
        Assert.True(result.Succeeded, string.Join("; ", result.Errors));
        Assert.Empty(result.Warnings);
        Assert.Equal(ModelPresets.Get(preset) with { Name = "x" }, result.Spec! with { Name = "x" });
    }

    private static HfConfigResult Read(string json) => HfConfigReader.Read(json, "test");

    private const string Minimal = """
        {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
        "vocab_size": 1000
        """;

    [Fact]
    public void DefaultsFollowLlamaConfig()
    {
        var spec = Read(Minimal + "}").Spec!;
        Assert.Equal(4, spec.KeyValueHeads); // num_key_value_heads defaults to num_attention_heads
        Assert.Equal(10000, spec.RopeTheta);
        Assert.False(spec.TiedEmbeddings);
        Assert.Equal("test", spec.Name);
    }

    [Fact]
    public void NameComesFromNameOrPath() =>
        Assert.Equal(
            "deepseek-llm-7b-base",
            Read(Minimal + """, "_name_or_path": "deepseek-ai/deepseek-llm-7b-base"}""").Spec!.Name
        );

    [Theory]
    [InlineData("hidden_size")]
    [InlineData("intermediate_size")]
    [InlineData("num_hidden_layers")]
    [InlineData("num_attention_heads")]
    [InlineData("vocab_size")]
    public void MissingRequiredFieldIsNamed(string field)
    {
        var json = Minimal.Replace($"\"{field}\"", "\"renamed_" + field + "\"") + "}";
        var result = Read(json);
        Assert.False(result.Succeeded);
        Assert.Contains(result.Errors, e => e.Field == field && e.Message == "is required");
        Assert.Contains(result.Warnings, w => w.Contains("renamed_" + field));
    }

    [Fact]
    public void UnknownFieldIsAWarningNotAnError()
    {
        var result = Read(Minimal + """, "foo_scale": 4096}""");
        Assert.True(result.Succeeded);
        Assert.StartsWith("Unknown field 'foo_scale' = 4096 ignored", Assert.Single(result.Warnings));
    }

    [Fact]
    public void AFieldTheFamilyDoesNotReadIsAWarningNamingTheClass()
    {
        // LlamaAttention has no window: transformers ignores sliding_window on a LLaMA config, and so does Explorer,
        // saying so.
        var result = Read(Minimal + """, "sliding_window": 4096}""");
        Assert.True(result.Succeeded);
        Assert.Null(result.Spec!.SlidingWindow);
        Assert.Equal(
            "'sliding_window' = 4096 ignored: LlamaForCausalLM in transformers does not read it.",
            Assert.Single(result.Warnings)
        );
    }

    [Theory]
    [InlineData(""", "num_key_value_heads": 3}""", "num_key_value_heads", "3")]
    [InlineData(""", "hidden_act": "relu"}""", "hidden_act", "\"relu\"")]
    [InlineData(""", "model_type": "gpt2"}""", "model_type", "\"gpt2\"")]
    [InlineData(""", "architectures": ["GPT2LMHeadModel"]}""", "architectures", "[\"GPT2LMHeadModel\"]")]
    [InlineData(""", "architectures": ["Gemma2ForCausalLM"]}""", "architectures", "[\"Gemma2ForCausalLM\"]")]
    [InlineData(""", "architectures": ["LlamaForCausalLM"], "model_type": "mistral"}""", "model_type", "\"mistral\"")]
    [InlineData(""", "head_dim": 7}""", "head_dim", "7")]
    [InlineData(""", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}""", "rope_scaling.rope_type", "\"yarn\"")]
    [InlineData(
        """, "rope_scaling": {"rope_type": "longrope", "short_factor": [1], "long_factor": [2]}}""",
        "rope_scaling.rope_type",
        "\"longrope\""
    )]
    [InlineData(
        """
            , "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192}}
            """,
        "rope_scaling.high_freq_factor",
        "(missing)"
    )]
    [InlineData(""", "rope_scaling": {"factor": 8.0}}""", "rope_scaling.rope_type", "(missing)")]
    [InlineData(""", "rope_scaling": {"type": "linear", "factor": 0.5}}""", "rope_scaling.factor", "0.5")]
    [InlineData(""", "partial_rotary_factor": 0.5}""", "partial_rotary_factor", "0.5")]
    [InlineData(
        """, "quantization_config": {"quant_method": "awq"}}""",
        "quantization_config",
        "{\"quant_method\": \"awq\"}"
    )]
    [InlineData(""", "final_logit_softcapping": 30.0}""", "final_logit_softcapping", "30.0")]
    [InlineData(
        """, "model_type": "qwen2", "use_sliding_window": true, "sliding_window": 0, "max_window_layers": 0}""",
        "sliding_window",
        "0"
    )]
    [InlineData(
        """
            , "model_type": "qwen2",
            "layer_types": ["sliding_attention", "full_attention", "full_attention", "full_attention"]}
            """,
        "layer_types",
        "[\"sliding_attention\", \"full_attention\", \"full_attention\", \"full_attention\"]"
    )]
    [InlineData(""", "rope_theta": "big"}""", "rope_theta", "\"big\"")]
    [InlineData(""", "tie_word_embeddings": 1}""", "tie_word_embeddings", "1")]
    [InlineData(""", "max_position_embeddings": 1.5}""", "max_position_embeddings", "1.5")]
    [InlineData(""", "rms_norm_eps": -1}""", "rms_norm_eps", "-1")]
    public void BadFieldIsNamedWithItsValue(string tail, string field, string value)
    {
        var result = Read(Minimal + tail);
        Assert.False(result.Succeeded);
        var error = Assert.Single(result.Errors);
        Assert.Equal(field, error.Field);
        Assert.Equal(value, error.Value);
    }

    [Fact]
    public void WrongTypeForASizeIsReported()
    {
        var result = Read(Minimal.Replace("\"hidden_size\": 256", "\"hidden_size\": \"256\"") + "}");
        var error = Assert.Single(result.Errors);
        Assert.Equal(("hidden_size", "\"256\"", "must be a whole number"), (error.Field, error.Value, error.Message));
    }

    [Theory]
    [InlineData("{\"hidden_size\": ", "not valid JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("", "not valid JSON")]
    public void MalformedFilesAreRejected(string json, string message)
    {
        var result = Read(json);
        Assert.Null(result.Spec);
        Assert.Contains(message, Assert.Single(result.Errors).Message);
    }

    [Fact]
    public void NonUtf8IsRejected()
    {
        var bytes = Encoding
            .UTF8.GetBytes(Minimal + ", \"x\": \"")
            .Concat(new byte[] { 0xC3, 0x28, (byte)'"', (byte)'}' })
            .ToArray();
        var result = HfConfigReader.Read(bytes, "t");
        Assert.Null(result.Spec);
        Assert.Single(result.Errors);
    }

    [Fact]
    public void OversizedInputIsRejectedBeforeParsing()
    {
        var result = HfConfigReader.Read(new byte[HfConfigReader.MaxBytes + 1], "t");
        Assert.Contains("larger than", Assert.Single(result.Errors).Message);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var result = HfConfigReader.ReadFile("/nonexistent/config.json");
        Assert.Equal("/nonexistent/config.json", Assert.Single(result.Errors).Value);
    }

    [Fact]
    public void FamilyDefaultsFollowEachConfigClass()
    {
        // GemmaConfig: head_dim 256, tied embeddings, gelu_pytorch_tanh; Phi3Config and Olmo2Config: eps 1e-5;
        // MistralConfig: window 4096.
        var gemma = Read(Minimal + """, "model_type": "gemma"}""").Spec!;
        Assert.Equal(
            (256, true, Activation.GeluTanh, 1e-6),
            (gemma.HeadDim, gemma.TiedEmbeddings, gemma.Activation, gemma.NormEpsilon)
        );
        Assert.Equal(1e-5, Read(Minimal + """, "model_type": "phi3"}""").Spec!.NormEpsilon);
        Assert.Equal(1e-5, Read(Minimal + """, "model_type": "olmo2"}""").Spec!.NormEpsilon);
        Assert.Equal(4096, Read(Minimal + """, "model_type": "mistral"}""").Spec!.SlidingWindow);
        Assert.Null(Read(Minimal + """, "model_type": "mistral", "sliding_window": null}""").Spec!.SlidingWindow);
        Assert.Equal(128, Read(Minimal + """, "model_type": "qwen3"}""").Spec!.HeadDim);
    }

    [Fact]
    public void QwenWindowStartsAtMaxWindowLayersAndOnlyWhenUsed()
    {
        var off = Read(
            Minimal
                + """
                , "model_type": "qwen2", "use_sliding_window": false, "sliding_window": 16,
                "max_window_layers": 2}
                """
        ).Spec!;
        Assert.Null(off.SlidingWindow);
        var on = Read(
            Minimal
                + """
                , "model_type": "qwen2", "use_sliding_window": true, "sliding_window": 16, "max_window_layers": 2}
                """
        ).Spec!;
        Assert.Equal((16, 2), (on.SlidingWindow!.Value, on.FirstSlidingLayer));
        Assert.Equal([false, false, true, true], Enumerable.Range(0, 4).Select(on.SlidesAt));
        var listed = Read(
            Minimal
                + """
                , "model_type": "qwen3", "sliding_window": 16,
                "layer_types": ["full_attention", "sliding_attention", "sliding_attention", "sliding_attention"]}
                """
        ).Spec!;
        Assert.Equal((16, 1), (listed.SlidingWindow!.Value, listed.FirstSlidingLayer));
    }

    [Fact]
    public void RopeParametersOfTransformers5AreReadLikeRopeScaling()
    {
        var v4 = Read(
            Minimal
                + """
                , "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
                """
        ).Spec!;
        var v5 = Read(
            Minimal
                + """
                , "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}
                """
        ).Spec!;
        Assert.Equal(v4, v5);
        Assert.Equal(new RopeScaling(RopeScalingKind.Llama3, 8, 1, 4, 8192), v4.RopeScaling);
        Assert.Equal(500000, v4.RopeTheta);
        var plain = Read(Minimal + """, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}""").Spec!;
        Assert.Equal((1e6, (RopeScaling?)null), (plain.RopeTheta, plain.RopeScaling));
    }

    [Fact]
    public void EveryFamilyRoundTripsThroughItsOwnConfigClass()
    {
        foreach (var family in Enum.GetValues<ModelFamily>())
        {
            var rules = FamilyRules.Of(family);
            var read = Read(
                Minimal + $$""", "architectures": ["{{rules.Class}}"], "model_type": "{{rules.ModelType}}"}"""
            );
            Assert.True(read.Succeeded, string.Join("; ", read.Errors));
            var json = HfConfigWriter.ToJson(read.Spec!);
            Assert.Contains($"\"{rules.Class}\"", json);
            Assert.Equal(read.Spec, HfConfigReader.Read(json, "x").Spec! with { Name = read.Spec!.Name });
        }
    }

    [Fact]
    public void ADesignTheFamilyCannotExpressIsNotWritten()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            HfConfigWriter.ToJson(ModelPresets.DeepSeekLlm7B with { QkNorm = QkNorm.PerHead })
        );
        Assert.Contains("LlamaForCausalLM", error.Message);
    }
}

public class HfConfigWriterTests
{
    [Fact]
    public void EveryPresetRoundTrips()
    {
        foreach (var spec in ModelPresets.All.Concat(MiniPresets.All))
        {
            var result = HfConfigReader.Read(HfConfigWriter.ToJson(spec), "x");
            Assert.True(result.Succeeded, string.Join("; ", result.Errors));
            Assert.Empty(result.Warnings);
            Assert.Equal(spec, result.Spec);
        }
    }

    [Fact]
    public void PostNormCannotBeWrittenAsLlama() =>
        Assert.Throws<ArgumentException>(() =>
            HfConfigWriter.ToJson(ModelPresets.DeepSeekLlm7B with { NormPlacement = NormPlacement.Post })
        );
}
