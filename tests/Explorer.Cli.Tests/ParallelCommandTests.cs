using System.Text.Json;
using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Specs;

namespace Explorer.Cli.Tests;

public class ParallelCommandTests
{
    [Fact]
    public void OneConfigurationPrintsTheEstimatorsNumbers()
    {
        var (code, output, error) = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "64",
            "--gpu",
            "h200",
            "--global-batch",
            "1024",
            "--seq",
            "4096",
            "--tp",
            "8",
            "--pp",
            "4",
            "--mbs",
            "1",
            "--sequence-parallel",
            "--recompute",
            "selective",
            "--zero",
            "1",
            "--json"
        );
        Assert.Equal(0, code);
        Assert.Equal("", error);
        var json = JsonDocument.Parse(output).RootElement;
        var expected = ParallelEstimator.Estimate(
            ModelPresets.DeepSeekLlm67B,
            4096,
            Cluster.Node8(Gpu.H200),
            new ParallelConfig
            {
                Tensor = 8,
                Pipeline = 4,
                Data = 2,
                GlobalBatch = 1024,
                SequenceParallel = true,
                Recompute = Recomputation.Selective,
                Zero = 1,
            }
        );
        Assert.Equal(2, json.GetProperty("dp").GetInt32());
        Assert.Equal(512, json.GetProperty("microBatches").GetInt32());
        Assert.Equal(expected.StepSeconds, json.GetProperty("stepSeconds").GetDouble(), 9);
        Assert.Equal(expected.Memory!.Total, json.GetProperty("memoryPerGpuBytes").GetInt64());
        Assert.Equal(expected.Fits, json.GetProperty("fits").GetBoolean());
        foreach (
            var key in new[]
            {
                "tp",
                "pp",
                "vpp",
                "mbs",
                "tokensPerSecond",
                "tflopsPerGpu",
                "mfu",
                "bubbleFraction",
                "bottleneck",
            }
        )
            Assert.True(json.TryGetProperty(key, out _), key);
    }

    [Fact]
    public void ContextParallelismIsADimensionOfOneConfiguration()
    {
        var (code, output, error) = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "64",
            "--gpu",
            "h200",
            "--global-batch",
            "32",
            "--seq",
            "32768",
            "--tp",
            "2",
            "--cp",
            "8",
            "--pp",
            "4",
            "--sequence-parallel",
            "--recompute",
            "selective",
            "--json"
        );
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(output).RootElement;
        var expected = ParallelEstimator.Estimate(
            ModelPresets.DeepSeekLlm67B,
            32768,
            Cluster.Node8(Gpu.H200),
            new ParallelConfig
            {
                Tensor = 2,
                Context = 8,
                Pipeline = 4,
                Data = 1,
                GlobalBatch = 32,
                SequenceParallel = true,
                Recompute = Recomputation.Selective,
                Zero = 1,
            }
        );
        Assert.Equal(8, json.GetProperty("c").GetInt32());
        Assert.Equal(1, json.GetProperty("dp").GetInt32()); // 64 / (t·c·p)
        Assert.Equal(expected.StepSeconds, json.GetProperty("stepSeconds").GetDouble(), 9);
        Assert.Equal(expected.Time!.ContextComm, json.GetProperty("time").GetProperty("contextComm").GetDouble(), 12);
        // 2c must divide the sequence, as Megatron-LM's validate_args asks.
        var odd = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "48",
            "--global-batch",
            "32",
            "--seq",
            "4096",
            "--cp",
            "3",
            "--tp",
            "1",
            "--pp",
            "1"
        );
        Assert.Equal(2, odd.Code);
        Assert.Contains("not a multiple of 6", odd.Out);
    }

    [Fact]
    public void OverlapIsASettingOfTheSearchAndOfOneConfiguration()
    {
        string[] args =
        [
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "64",
            "--gpu",
            "h200",
            "--global-batch",
            "256",
            "--json",
        ];
        var plain = JsonDocument.Parse(Cli.Run(args).Out).RootElement.GetProperty("configurations")[0];
        var overlapped = JsonDocument
            .Parse(Cli.Run([.. args, "--overlap-grad-reduce", "--overlap-param-gather", "--tp-comm-overlap"]).Out)
            .RootElement.GetProperty("configurations")[0];
        Assert.True(overlapped.GetProperty("stepSeconds").GetDouble() < plain.GetProperty("stepSeconds").GetDouble());
        Assert.True(overlapped.GetProperty("overlap").GetProperty("gradReduce").GetBoolean());
        // One configuration: Megatron-LM's rule for the tensor-parallel overlap.
        var (code, output, _) = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "64",
            "--global-batch",
            "256",
            "--tp",
            "8",
            "--pp",
            "4",
            "--tp-comm-overlap"
        );
        Assert.Equal(2, code);
        Assert.Contains("only with sequence parallelism", output);
    }

    [Fact]
    public void TheUnfusedAttentionPathCostsMoreTimeAndMemoryAndSaysSo()
    {
        string[] args =
        [
            "parallel",
            "--model",
            "deepseek-llm-7b",
            "--gpus",
            "8",
            "--global-batch",
            "64",
            "--tp",
            "2",
            "--pp",
            "2",
            "--recompute",
            "none",
            "--json",
        ];
        var flash = JsonDocument.Parse(Cli.Run(args).Out).RootElement;
        var unfused = JsonDocument.Parse(Cli.Run([.. args, "--attention-backend", "unfused"]).Out).RootElement;
        Assert.Equal("flash", flash.GetProperty("attentionBackend").GetString());
        Assert.Equal("unfused", unfused.GetProperty("attentionBackend").GetString());
        Assert.True(unfused.GetProperty("stepSeconds").GetDouble() > flash.GetProperty("stepSeconds").GetDouble());
        Assert.True(
            unfused.GetProperty("memory").GetProperty("activations").GetInt64()
                > flash.GetProperty("memory").GetProperty("activations").GetInt64()
        );
    }

    [Fact]
    public void ASearchOfAGptShapeListsFittingConfigurationsFastestFirst()
    {
        var (code, output, _) = Cli.Run(
            "parallel",
            "--layers",
            "24",
            "--hidden",
            "2304",
            "--heads",
            "24",
            "--vocab",
            "51200",
            "--gpus",
            "32",
            "--gpu",
            "a100-80gb",
            "--global-batch",
            "512",
            "--seq",
            "2048",
            "--json"
        );
        Assert.Equal(0, code);
        var rows = JsonDocument.Parse(output).RootElement.GetProperty("configurations").EnumerateArray().ToArray();
        Assert.NotEmpty(rows);
        var steps = rows.Select(r => r.GetProperty("stepSeconds").GetDouble()).ToArray();
        Assert.Equal(steps.Order(), steps);
        Assert.All(rows, r =>
            Assert.Equal(
                32,
                r.GetProperty("tp").GetInt32() * r.GetProperty("pp").GetInt32() * r.GetProperty("dp").GetInt32()
            )
        );
        // Ties and the front, by their definitions over the rows printed.
        var root = JsonDocument.Parse(output).RootElement;
        var error = root.GetProperty("estimatorError").GetDouble();
        Assert.Equal(steps.Count(s => s <= steps[0] * (1 + error)), root.GetProperty("tiedWithFastest").GetInt32());
        var memory = rows.Select(r => r.GetProperty("memoryPerGpuBytes").GetInt64()).ToArray();
        var front = root.GetProperty("paretoFront").EnumerateArray().Select(e => e.GetInt32() - 1).ToArray();
        var expected = Enumerable
            .Range(0, rows.Length)
            .Where(i =>
                !Enumerable
                    .Range(0, rows.Length)
                    .Any(j =>
                        steps[j] <= steps[i] && memory[j] <= memory[i] && (steps[j] < steps[i] || memory[j] < memory[i])
                    )
            );
        Assert.Equal(expected, front);
        var (_, table, _) = Cli.Run(
            "parallel",
            "--layers",
            "24",
            "--hidden",
            "2304",
            "--heads",
            "24",
            "--vocab",
            "51200",
            "--gpus",
            "32",
            "--gpu",
            "a100-80gb",
            "--global-batch",
            "512",
            "--seq",
            "2048"
        );
        Assert.Contains($"Pareto front of step time against memory per GPU ({front.Length} configurations", table);
    }

    [Theory]
    [InlineData("--tp", "3", "t = 3 does not divide the 64 attention heads")]
    [InlineData("--pp", "96", "p = 96 is more stages than the 95 layers")]
    public void ABrokenConfigurationNamesTheRuleAndExitsWithTwo(string flag, string value, string expected)
    {
        var (code, output, _) = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "96",
            "--global-batch",
            "96",
            flag,
            value,
            flag == "--tp" ? "--pp" : "--tp",
            "1"
        );
        Assert.Equal(2, code);
        Assert.Contains(expected, output);
    }

    [Theory]
    [InlineData(new[] { "parallel", "--gpus", "8", "--global-batch", "8" }, "Give exactly one of --model")]
    [InlineData(
        new[] { "parallel", "--model", "deepseek-llm-7b", "--gpus", "8", "--global-batch", "8", "--gpu", "tpu" },
        "Unknown GPU 'tpu'"
    )]
    [InlineData(
        new[] { "parallel", "--model", "deepseek-llm-7b", "--gpus", "8", "--global-batch", "8", "--tp", "3" },
        "not a multiple of t·c·p = 3"
    )]
    [InlineData(
        new[] { "parallel", "--model", "deepseek-llm-7b", "--gpus", "8", "--global-batch", "8", "--cp", "0" },
        "--cp 0: context parallel c must be at least 1."
    )]
    [InlineData(new[] { "parallel", "--model", "deepseek-llm-7b", "--gpus", "0", "--global-batch", "8" }, "GPUs: 0")]
    [InlineData(
        new[] { "parallel", "--model", "deepseek-llm-7b", "--gpus", "8", "--global-batch", "8", "--recompute", "some" },
        "Unknown recomputation 'some'"
    )]
    [InlineData(
        new[]
        {
            "parallel",
            "--model",
            "deepseek-llm-7b",
            "--gpus",
            "8",
            "--global-batch",
            "8",
            "--attention-backend",
            "sdpa",
        },
        "Unknown attention backend 'sdpa'. Use flash or unfused."
    )]
    public void BadFlagsExitWithTwoAndSayWhy(string[] args, string expected)
    {
        var (code, _, error) = Cli.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void AVScheduleTakesItsTwoChunksPerDeviceUnasked()
    {
        var (code, output, error) = Cli.Run(
            "parallel",
            "--model",
            "deepseek-llm-67b",
            "--gpus",
            "64",
            "--gpu",
            "h200",
            "--global-batch",
            "1024",
            "--tp",
            "2",
            "--pp",
            "4",
            "--sequence-parallel",
            "--schedule",
            "zbv",
            "--json"
        );
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal(2, json.GetProperty("vpp").GetInt32());
        Assert.Equal("zbv", json.GetProperty("schedule").GetString());
        // Its bubble is the fill alone: (p − 1)/6 of a micro-batch's stage time, where 1F1B idles p − 1 of them. The
        // stage time includes the micro-batch's transfers, one pair per chunk: 2·T for 1F1B, 4·T for the V, T read off
        // 1F1B's pipeline communication (m of those pairs).
        var oneF = JsonDocument
            .Parse(
                Cli.Run(
                    "parallel",
                    "--model",
                    "deepseek-llm-67b",
                    "--gpus",
                    "64",
                    "--gpu",
                    "h200",
                    "--global-batch",
                    "1024",
                    "--tp",
                    "2",
                    "--pp",
                    "4",
                    "--sequence-parallel",
                    "--json"
                ).Out
            )
            .RootElement;
        double m = oneF.GetProperty("microBatches").GetInt32(),
            pairs = oneF.GetProperty("time").GetProperty("pipelineComm").GetDouble() / m;
        var stage = oneF.GetProperty("time").GetProperty("bubble").GetDouble() / 3 - pairs;
        Assert.Equal(3 / 6.0 * (stage + 2 * pairs), json.GetProperty("time").GetProperty("bubble").GetDouble(), 9);
    }
}
