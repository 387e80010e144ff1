using System.Text.Json;
using Explorer.Cli;

namespace Explorer.Cli.Tests;

public class SpecsCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    [Fact]
    public void JsonReportsTheExact67BTotal()
    {
        var (code, output, _) = Run("specs", "--model", "deepseek-llm-67b", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var p = doc.RootElement.GetProperty("parameters");
        // 95 layers of (2·8192² + 2·8192·1024 + 3·8192·22016 + 2·8192) + 2·102400·8192 + 8192.
        long perLayer = 2L * 8192 * 8192 + 2L * 8192 * 1024 + 3L * 8192 * 22016 + 2 * 8192;
        Assert.Equal(95 * perLayer + 2L * 102400 * 8192 + 8192, p.GetProperty("total").GetInt64());
        Assert.Equal(perLayer, p.GetProperty("perLayer").GetInt64());
        Assert.Equal(102400L * 8192, p.GetProperty("embedding").GetInt64());
        Assert.Equal(102400L * 8192, p.GetProperty("head").GetInt64());
        Assert.Equal(2L * 95 * 1024 * 2, doc.RootElement.GetProperty("kvCacheBytesPerToken").GetInt64());
    }

    [Fact]
    public void SeqChangesTheAttentionFlops()
    {
        long At(int s)
        {
            var (_, output, _) = Run("specs", "--model", "deepseek-llm-7b", "--seq", s.ToString(), "--json");
            using var doc = JsonDocument.Parse(output);
            return doc.RootElement.GetProperty("flopsPerToken").GetInt64();
        }
        // Causal attention adds 2·d·(s+1) per layer: between s = 1024 and s = 2048 that is 30·2·4096·1024.
        Assert.Equal(30L * 2 * 4096 * 1024, At(2048) - At(1024));
    }

    [Fact]
    public void ConfigFileIsAnalysedLikeThePreset()
    {
        var dir = Directory.CreateTempSubdirectory();
        try
        {
            var path = Path.Combine(dir.FullName, "config.json");
            File.WriteAllText(
                path,
                """
                {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                 "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 30,
                 "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 102400,
                 "max_position_embeddings": 4096, "rms_norm_eps": 1e-06, "rope_theta": 10000.0}
                """
            );
            var (code, output, _) = Run("specs", "--config", path, "--json");
            Assert.Equal(0, code);
            using var doc = JsonDocument.Parse(output);
            Assert.Equal(6_910_365_696L, doc.RootElement.GetProperty("parameters").GetProperty("total").GetInt64());
            Assert.Equal(dir.Name, doc.RootElement.GetProperty("model").GetString());
        }
        finally
        {
            dir.Delete(true);
        }
    }

    [Fact]
    public void TableShowsExactAndReadableFigures()
    {
        var (code, output, _) = Run("specs", "--model", "deepseek-llm-7b");
        Assert.Equal(0, code);
        Assert.Contains("6,910,365,696", output);
        Assert.Contains("6.91 B", output);
        Assert.Contains("491,520", output); // KV bytes per token, bf16
    }

    [Fact]
    public void UnknownModelExitsTwoAndListsModels()
    {
        var (code, _, error) = Run("specs", "--model", "gpt-5");
        Assert.Equal(2, code);
        Assert.Contains("'gpt-5'", error);
        Assert.Contains("deepseek-llm-67b", error);
    }

    [Fact]
    public void MissingFileExitsTwoAndNamesIt()
    {
        var (code, _, error) = Run("specs", "--config", "/nonexistent/dir/config.json");
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/dir/config.json", error);
    }

    [Fact]
    public void InvalidConfigExitsTwoAndNamesTheField()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(
                path,
                """
                {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 30, "num_attention_heads": 30,
                "vocab_size": 100}
                """
            );
            var (code, _, error) = Run("specs", "--config", path);
            Assert.Equal(2, code);
            Assert.Contains("num_attention_heads = 30", error);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("specs")]
    [InlineData("specs", "--model", "deepseek-llm-7b", "--seq", "0")]
    [InlineData("specs", "--model", "deepseek-llm-7b", "--seq", "many")]
    [InlineData("specs", "--bogus")]
    [InlineData("nonsense")]
    public void BadCommandLinesExitTwoWithAMessage(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", error);
    }
}

public class ForwardCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    [Fact]
    public void DumpHoldsTokensLogitsAndHiddenNorms()
    {
        var dump = Path.Combine(Path.GetTempPath(), $"explorer-dump-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, error) = Run(
                "forward",
                "--model",
                "deepseek-7b-mini",
                "--tokens",
                "5,17,400,9",
                "--top",
                "3",
                "--dump",
                dump,
                "--device",
                "cpu"
            );
            Assert.True(code == 0, error);
            using var doc = JsonDocument.Parse(File.ReadAllText(dump));
            var root = doc.RootElement;
            Assert.Equal([5, 17, 400, 9], root.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
            var logits = root.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            Assert.Equal(4096, logits.Length); // every vocabulary entry of the mini tokenizer
            var norms = root.GetProperty("hiddenNorms");
            Assert.Equal(30, norms.GetArrayLength()); // one row per layer
            Assert.All(norms.EnumerateArray(), row => Assert.Equal(4, row.GetArrayLength())); // one value per position
            // The printed top-1 is the argmax of the dumped logits.
            var argmax = Array.IndexOf(logits, logits.Max());
            var firstRow = output.Split('\n').First(l => l.TrimStart().StartsWith("1 "));
            Assert.Contains($" {argmax} ", firstRow);
        }
        finally
        {
            File.Delete(dump);
        }
    }

    [Fact]
    public void PromptIsTokenizedAndShown()
    {
        var (code, output, _) = Run(
            "forward",
            "--model",
            "deepseek-67b-mini",
            "--prompt",
            "Hello world",
            "--top",
            "2",
            "--device",
            "cpu"
        );
        Assert.Equal(0, code);
        var header = output.Split('\n')[0];
        Assert.Equal(
            "Hello␣world",
            header[(header.IndexOf("tokens: ", StringComparison.Ordinal) + 8)..].Replace(" | ", "").Trim()
        );
    }

    [Theory]
    [InlineData("forward", "--model", "deepseek-7b-mini")] // neither prompt nor tokens
    [InlineData("forward", "--model", "deepseek-7b-mini", "--tokens", "1,x")] // bad id
    [InlineData("forward", "--model", "deepseek-7b-mini", "--tokens", "99999")] // outside vocabulary
    [InlineData("forward", "--model", "deepseek-llm-7b", "--tokens", "1")] // no weights for the full shape
    [InlineData("forward", "--weights", "/nonexistent/folder", "--tokens", "1")]
    [InlineData("forward", "--model", "deepseek-7b-mini", "--tokens", "1", "--device", "tpu")]
    public void BadInputExitsTwo(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", error);
    }
}
