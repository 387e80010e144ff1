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

    private const string Minimal =
        """{"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4, "vocab_size": 1000""";

    [Fact]
    public void DefaultsFollowLlamaConfig()
    {
        var spec = Read(Minimal + "}").Spec!;
        Assert.Equal(4, spec.KeyValueHeads);      // num_key_value_heads defaults to num_attention_heads
        Assert.Equal(10000, spec.RopeTheta);
        Assert.False(spec.TiedEmbeddings);
        Assert.Equal("test", spec.Name);
    }

    [Fact]
    public void NameComesFromNameOrPath() =>
        Assert.Equal("deepseek-llm-7b-base", Read(Minimal + """, "_name_or_path": "deepseek-ai/deepseek-llm-7b-base"}""").Spec!.Name);

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
        var result = Read(Minimal + """, "sliding_window": 4096}""");
        Assert.True(result.Succeeded);
        Assert.Equal("Unknown field 'sliding_window' ignored.", Assert.Single(result.Warnings));
    }

    [Theory]
    [InlineData(""", "num_key_value_heads": 3}""", "num_key_value_heads", "3")]
    [InlineData(""", "hidden_act": "gelu"}""", "hidden_act", "\"gelu\"")]
    [InlineData(""", "model_type": "mistral"}""", "model_type", "\"mistral\"")]
    [InlineData(""", "architectures": ["GPT2LMHeadModel"]}""", "architectures", "[\"GPT2LMHeadModel\"]")]
    [InlineData(""", "attention_bias": true}""", "attention_bias", "true")]
    [InlineData(""", "head_dim": 128}""", "head_dim", "128")]
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
        var bytes = Encoding.UTF8.GetBytes(Minimal + ", \"x\": \"").Concat(new byte[] { 0xC3, 0x28, (byte)'"', (byte)'}' }).ToArray();
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
        Assert.Throws<ArgumentException>(() => HfConfigWriter.ToJson(ModelPresets.DeepSeekLlm7B with { NormPlacement = NormPlacement.Post }));
}
