using System.Text.Json;
using System.Text.RegularExpressions;
using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests.Pipeline;

/// <summary>
/// Every export checked against what the targeted engines' own sources accept: Data/export-fixtures.json is extracted
/// (research/export-fixtures/extract.py) from pinned commits of Megatron-LM (arguments.py and the dataclasses it turns
/// into flags), torchtitan (its frozen CLI options and ParallelismConfig) and DeepSpeed (PipelineModule, config keys).
/// </summary>
public class ExportFixtureTests
{
    private static readonly JsonElement Fixture = JsonDocument
        .Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "export-fixtures.json")))
        .RootElement;

    private static HashSet<string> Set(string tool, string key) =>
        Fixture.GetProperty(tool).GetProperty(key).EnumerateArray().Select(e => e.GetString()!).ToHashSet();

    private static readonly IReadOnlyList<PipelineUnit> Units67B = CostModel.Units(
        ModelPresets.DeepSeekLlm67B,
        new CostSettings()
    );
    private static readonly IReadOnlyList<PipelineUnit> Units7B = CostModel.Units(
        ModelPresets.DeepSeekLlm7B,
        new CostSettings()
    );

    private static PlanReport Plan(PlanRequest request) => PipelinePlanner.Plan(request).Report!;

    /// <summary>Plans of every shape the exports handle, each with a parallel configuration or none.</summary>
    public static IEnumerable<(string Name, PlanReport Report, ParallelConfig? Config)> Cases()
    {
        var uniform = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Method = PartitionMethod.Uniform,
            }
        );
        yield return ("7B uniform, pipeline only", uniform, null);
        yield return (
            "7B uniform, t=4 SP selective ZeRO-1",
            uniform,
            new ParallelConfig
            {
                Tensor = 4,
                Pipeline = 2,
                Data = 8,
                MicroBatch = 2,
                GlobalBatch = 128,
                SequenceParallel = true,
                Recompute = Recomputation.Selective,
                Zero = 1,
            }
        );
        var accounted = Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 8,
                MicroBatches = 16,
                Method = PartitionMethod.Uniform,
                Uniform = new UniformPartitioner(AccountForEmbedding: true),
            }
        );
        yield return (
            "67B uniform +E, full recompute",
            accounted,
            new ParallelConfig
            {
                Tensor = 8,
                Pipeline = 8,
                Data = 1,
                GlobalBatch = 16,
                Recompute = Recomputation.Full,
                Zero = 1,
            }
        );
        var optimal = Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 8,
                MicroBatches = 16,
            }
        );
        yield return (
            "67B optimal (layout)",
            optimal,
            new ParallelConfig
            {
                Tensor = 8,
                Pipeline = 8,
                Data = 2,
                GlobalBatch = 32,
                SequenceParallel = true,
                Zero = 1,
            }
        );
        yield return (
            "67B optimal, every overlap",
            optimal,
            new ParallelConfig
            {
                Tensor = 8,
                Pipeline = 8,
                Data = 2,
                GlobalBatch = 32,
                SequenceParallel = true,
                Zero = 1,
                Overlap = new CommOverlap(true, true, true),
            }
        );
        yield return (
            "7B uniform, gradient overlap (DeepSpeed overlap_comm)",
            uniform,
            new ParallelConfig
            {
                Pipeline = 2,
                Data = 2,
                GlobalBatch = 16,
                Zero = 1,
                Overlap = new CommOverlap(GradReduce: true),
            }
        );
        var interleaved = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                VirtualStages = 3,
                MicroBatches = 8,
                Schedule = ScheduleKind.Interleaved1F1B,
                Method = PartitionMethod.Uniform,
            }
        );
        yield return ("7B interleaved uniform", interleaved, null);
        var interleavedOptimal = Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 4,
                VirtualStages = 2,
                MicroBatches = 8,
                Schedule = ScheduleKind.Interleaved1F1B,
            }
        );
        yield return ("67B interleaved optimal (layout)", interleavedOptimal, null);
        yield return (
            "7B uniform, t=2 c=2 (context parallel)",
            uniform,
            new ParallelConfig
            {
                Tensor = 2,
                Context = 2,
                Pipeline = 2,
                Data = 2,
                GlobalBatch = 16,
                SequenceParallel = true,
                Recompute = Recomputation.Selective,
                Zero = 1,
            }
        );
        var parameters = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Parameters,
            }
        );
        yield return (
            "7B parameters, ZeRO-0",
            parameters,
            new ParallelConfig
            {
                Pipeline = 4,
                Data = 2,
                GlobalBatch = 16,
                Zero = 0,
            }
        );
    }

    [Fact]
    public void TheFixtureIsFromThePinnedCommitsAndKnowsWhatWasRemoved()
    {
        Assert.Equal(ExportTargets.MegatronCommit, Fixture.GetProperty("megatron").GetProperty("commit").GetString());
        Assert.Equal(
            ExportTargets.TorchtitanCommit,
            Fixture.GetProperty("torchtitan").GetProperty("commit").GetString()
        );
        Assert.Equal(ExportTargets.DeepSpeedCommit, Fixture.GetProperty("deepspeed").GetProperty("commit").GetString());
        var flags = Set("megatron", "flags");
        Assert.Contains("--tensor-model-parallel-size", flags);
        Assert.DoesNotContain("--num-microbatches", flags);
        Assert.DoesNotContain("--virtual-pipeline-model-parallel-size", flags);
        Assert.DoesNotContain("pipeline_parallel_split_points", Set("torchtitan", "parallelismFields"));
    }

    [Fact]
    public void MegatronExportsUseOnlyFlagsAndValuesItsParserDefines()
    {
        var flags = Set("megatron", "flags");
        var choices = Fixture.GetProperty("megatron").GetProperty("choices");
        var exported = 0;
        foreach (var (name, report, config) in Cases())
        {
            var result = PlanExports.Megatron(report, config);
            if (!result.Succeeded)
                continue;
            exported++;
            var lines = result.Text!.Split('\n');
            Assert.StartsWith($"# Megatron-LM main @ {ExportTargets.MegatronCommit[..10]}", lines[0]);
            var tokens = Regex.Matches(lines[1], "\"[^\"]*\"|\\S+").Select(m => m.Value).ToArray();
            var values = new Dictionary<string, string?>();
            for (var i = 0; i < tokens.Length; i++)
            {
                Assert.StartsWith("--", tokens[i]);
                Assert.True(
                    flags.Contains(tokens[i]),
                    $"{name}: {tokens[i]} is not a Megatron-LM flag at {ExportTargets.MegatronCommit[..10]}"
                );
                var value = i + 1 < tokens.Length && !tokens[i + 1].StartsWith("--") ? tokens[++i] : null;
                values[tokens[i - (value is null ? 0 : 1)]] = value;
                if (value is not null && choices.TryGetProperty(tokens[i - 1], out var allowed))
                    Assert.Contains(value, allowed.EnumerateArray().Select(a => a.GetString()));
            }
            // Megatron-LM's own consistency rules: at most one way to interleave; micro-batches from the batch sizes.
            Assert.True(
                new[]
                {
                    "--num-layers-per-virtual-pipeline-stage",
                    "--num-virtual-stages-per-pipeline-rank",
                    "--pipeline-model-parallel-layout",
                }.Count(values.ContainsKey) <= 1,
                name
            );
            var c = PlanExports.ConfigOf(report, config);
            var globalBatch = int.Parse(values["--global-batch-size"]!);
            var microBatch = int.Parse(values["--micro-batch-size"]!);
            Assert.Equal(report.Request.MicroBatches, globalBatch / (microBatch * c.Data));
            if (values.TryGetValue("--pipeline-model-parallel-layout", out var layout))
            {
                var stages = layout!.Trim('"').Split('|');
                Assert.Equal(report.Request.PartitionStages, stages.Length);
                Assert.All(stages, s => Assert.Matches("^E?t*L?$", s));
                Assert.Equal(
                    report.Plan.Units.Count(u => u.Kind == UnitKind.Layer),
                    stages.Sum(s => s.Count(ch => ch == 't'))
                );
            }
        }
        Assert.True(exported >= 5, $"only {exported} Megatron exports");
    }

    [Fact]
    public void ContextParallelismIsCarriedByTheEnginesThatRunItAndRefusedByDeepSpeed()
    {
        var (_, report, config) = Cases().Single(c => c.Config?.Context > 1);
        var megatron = PlanExports.Megatron(report, config);
        Assert.True(megatron.Succeeded, megatron.Refusal);
        Assert.Contains("--context-parallel-size 2", megatron.Text);
        Assert.Contains("world size t·c·p·d = 2·2·2·2 = 16 GPUs", megatron.Text);
        var torchtitan = PlanExports.Torchtitan(report, config);
        Assert.Contains("    context_parallel_degree=2,", torchtitan.Text);
        Assert.Contains("parallelism.context_parallel_degree", Set("torchtitan", "cliOptions"));
        var deepspeed = PlanExports.DeepSpeed(report, config);
        Assert.False(deepspeed.Succeeded);
        Assert.Contains("no context parallelism", deepspeed.Refusal);
    }

    [Fact]
    public void OverlapSettingsAreTheEnginesOwnFlags()
    {
        var (_, report, config) = Cases().Single(c => c.Name == "67B optimal, every overlap");
        var megatron = PlanExports.Megatron(report, config).Text!;
        Assert.Contains(
            "--use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather --tp-comm-overlap",
            megatron
        );
        var torchtitan = PlanExports.Torchtitan(report, config).Text!;
        Assert.Contains(
            "compile=CompileConfig(enable=True, components=[\"model\", \"loss\"], enable_async_tensor_parallel=True),",
            torchtitan
        );
        var (_, plain, grad) = Cases().Single(c => c.Name.Contains("DeepSpeed overlap_comm"));
        Assert.Contains("\"overlap_comm\": true", PlanExports.DeepSpeed(plain, grad).Text);
    }

    [Fact]
    public void TheUnfusedAttentionPathIsMegatronsFlagAndTorchtitanRefusesIt()
    {
        var (_, report, config) = Cases().Single(c => c.Name == "67B optimal, every overlap");
        var unfused = config! with { FlashAttention = false };
        // AttnBackend (megatron/core/transformer/enums.py at the pinned commit): flash, fused, unfused, local, auto.
        Assert.Contains("--attention-backend", Set("megatron", "flags"));
        Assert.Contains(" --attention-backend unfused", PlanExports.Megatron(report, unfused).Text!.Split('\n')[1]);
        Assert.DoesNotContain("--attention-backend", PlanExports.Megatron(report, config).Text);
        var torchtitan = PlanExports.Torchtitan(report, unfused);
        Assert.False(torchtitan.Succeeded);
        Assert.Contains("--attention-backend flash", torchtitan.Refusal);
    }

    [Fact]
    public void TorchtitanExportsUseItsConfigFieldsAndModuleNames()
    {
        var parallelism = Set("torchtitan", "parallelismFields");
        var training = Set("torchtitan", "trainingFields");
        var policies = Set("torchtitan", "activationCheckpointing");
        var reshard = Fixture
            .GetProperty("torchtitan")
            .GetProperty("choices")
            .GetProperty("fsdp_reshard_after_forward")
            .EnumerateArray()
            .Select(e => e.GetString())
            .ToHashSet();
        foreach (var (name, report, config) in Cases())
        {
            var result = PlanExports.Torchtitan(report, config);
            Assert.True(result.Succeeded, $"{name}: {result.Refusal}");
            var text = result.Text!;
            Assert.StartsWith($"# torchtitan main @ {ExportTargets.TorchtitanCommit[..10]}", text);
            foreach (var (block, fields) in new[] { ("ParallelismConfig", parallelism), ("TrainingConfig", training) })
            {
                var body = Regex
                    .Match(text, block + @"\((?<body>.*?)\n\)", RegexOptions.Singleline)
                    .Groups["body"]
                    .Value;
                var keys = Regex
                    .Matches(body, @"^\s+(\w+)=", RegexOptions.Multiline)
                    .Select(m => m.Groups[1].Value)
                    .ToArray();
                Assert.NotEmpty(keys);
                Assert.All(keys, k =>
                    Assert.True(fields.Contains(k), $"{name}: {block}.{k} is not a torchtitan field")
                );
            }
            foreach (
                Match key in Regex.Matches(
                    Regex.Match(text, @"compile=CompileConfig\((?<args>[^)]*)\)").Groups["args"].Value,
                    @"(\w+)="
                )
            )
                Assert.Contains("compile." + key.Groups[1].Value, Set("torchtitan", "cliOptions"));
            if (Regex.Match(text, "fsdp_reshard_after_forward=\"(\\w+)\"") is { Success: true } m)
                Assert.Contains(m.Groups[1].Value, reshard);
            if (Regex.Match(text, @"activation_checkpoint=(\w+)\.Config") is { Success: true } ac)
                Assert.Contains(ac.Groups[1].Value, policies);
            // One list of module names per model chunk, covering the model once, in order.
            var parts = Regex.Match(text, @"module_fqns_per_model_part=\[(?<parts>.*)\],").Groups["parts"].Value;
            var chunks = Regex
                .Matches(parts, @"\[(.*?)\]")
                .Select(c => c.Groups[1].Value.Split(", ").Select(n => n.Trim('"')).ToArray())
                .ToArray();
            Assert.Equal(report.Request.PartitionStages, chunks.Length);
            var layers = report.Plan.Units.Count(u => u.Kind == UnitKind.Layer);
            string[] expected =
            [
                "tok_embeddings",
                .. Enumerable.Range(0, layers).Select(i => $"layers.{i}"),
                "norm",
                "lm_head",
            ];
            Assert.Equal(expected, chunks.SelectMany(c => c));
            var c2 = PlanExports.ConfigOf(report, config);
            Assert.Contains($"num_pp_microbatches={c2.MicroBatches},", text);
        }
    }

    [Fact]
    public void DeepSpeedExportsUsePipelineModuleArgumentsAndConfigKeys()
    {
        var arguments = Set("deepspeed", "pipelineModuleArguments");
        var methods = Set("deepspeed", "partitionMethods");
        var keys = Set("deepspeed", "configKeys");
        var zero = Set("deepspeed", "zeroFields");
        var exported = 0;
        foreach (var (name, report, config) in Cases())
        {
            var result = PlanExports.DeepSpeed(report, config);
            if (!result.Succeeded)
                continue;
            exported++;
            var text = result.Text!;
            Assert.StartsWith($"# DeepSpeed master @ {ExportTargets.DeepSpeedCommit[..10]}", text);
            var call = Regex.Match(text, @"PipelineModule\((?<args>[^)]*)\)").Groups["args"].Value;
            foreach (Match m in Regex.Matches(call, @"(\w+)="))
                Assert.True(
                    arguments.Contains(m.Groups[1].Value),
                    $"{name}: PipelineModule has no argument {m.Groups[1].Value}"
                );
            Assert.Contains(Regex.Match(call, "partition_method='(\\w+)'").Groups[1].Value, methods);
            using var json = JsonDocument.Parse(text[text.IndexOf('{')..]);
            foreach (var property in json.RootElement.EnumerateObject())
            {
                Assert.True(keys.Contains(property.Name), $"{name}: {property.Name} is not a DeepSpeed config key");
                if (property.Value.ValueKind == JsonValueKind.Object)
                    foreach (var inner in property.Value.EnumerateObject())
                        Assert.True(
                            keys.Contains(inner.Name)
                                || (property.Name == "zero_optimization" && zero.Contains(inner.Name)),
                            $"{name}: {property.Name}.{inner.Name}"
                        );
            }
            // DeepSpeed checks train_batch_size = micro-batch × accumulation × data-parallel size.
            var root = json.RootElement;
            var c = PlanExports.ConfigOf(report, config);
            Assert.Equal(
                root.GetProperty("train_batch_size").GetInt32(),
                root.GetProperty("train_micro_batch_size_per_gpu").GetInt32()
                    * root.GetProperty("gradient_accumulation_steps").GetInt32()
                    * c.Data
            );
        }
        Assert.True(exported >= 3, $"only {exported} DeepSpeed exports");
    }
}
