using System.Text.Json;
using Explorer.Cli;

namespace Explorer.Cli.Tests;

public sealed class PlanCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-plan-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static (int Code, string Out, string Err) Run(params string[] args) => Cli.Run(args);

    private string File(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        System.IO.File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void CostsFileOfNumbersIsSplitOptimally()
    {
        // Times 4 1 1 1 1 4 into 3 stages: [4] [1 1 1 1] [4] is the only split whose slowest stage is 4.
        var (code, output, error) = Run(
            "plan",
            "--costs",
            File("c.json", "[4, 1, 1, 1, 1, 4]"),
            "--stages",
            "3",
            "--json"
        );
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        var stages = doc
            .RootElement.GetProperty("stages")
            .EnumerateArray()
            .Select(s =>
                (
                    s.GetProperty("firstUnit").GetInt32(),
                    s.GetProperty("lastUnit").GetInt32(),
                    s.GetProperty("time").GetDouble()
                )
            )
            .ToArray();
        Assert.Equal([(0, 0, 4.0), (1, 4, 4.0), (5, 5, 4.0)], stages);
        Assert.Equal(4.0, doc.RootElement.GetProperty("maxStageTime").GetDouble(), 9);
    }

    [Fact]
    public void CostsFileOfObjectsIsRead()
    {
        var json = """
            [{"name": "a", "forward": 1, "inputGradient": 2, "weightGradient": 1}, {"name": "b", "forward": 3},
            {"name": "c", "forward": 1, "kind": "head"}]
            """;
        var (code, output, _) = Run("plan", "--costs", File("o.json", json), "--stages", "2", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        // a = 1 + 2 + 1 = 4, b = 3 + 3 + 3 = 9, c = 3: best is [a] [b c] = 12 or [a b] [c] = 13 → [a] [b, c].
        Assert.Equal(12.0, doc.RootElement.GetProperty("maxStageTime").GetDouble(), 9);
    }

    [Fact]
    public void SimulateReportsTheClosedFormBubble()
    {
        var (code, output, _) = Run(
            "simulate",
            "--stages",
            "4",
            "--microbatches",
            "12",
            "--schedule",
            "1f1b",
            "--json"
        );
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(3.0 / 15, doc.RootElement.GetProperty("bubbleFraction").GetDouble(), 9); // (p − 1)/(m + p − 1)
        Assert.Equal(15 * 3.0, doc.RootElement.GetProperty("makespan").GetDouble(), 9);
    }

    [Fact]
    public void ExportWritesMegatronFlagsOrRefuses()
    {
        var (code, output, _) = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron"
        );
        Assert.Equal(0, code);
        Assert.Contains(
            "--pipeline-model-parallel-size 8 --num-layers 95 --micro-batch-size 1 --global-batch-size 8",
            output
        );
        Assert.Contains("--account-for-embedding-in-pipeline-split", output);
        // With the parallel configuration: t, d, batch, SP, recomputation and the distributed optimizer.
        var full = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--tp",
            "8",
            "--dp",
            "4",
            "--mbs",
            "1",
            "--global-batch",
            "32",
            "--sequence-parallel",
            "--recompute",
            "selective",
            "--zero",
            "1"
        );
        Assert.Equal(0, full.Code);
        Assert.Contains(
            "--tensor-model-parallel-size 8 --pipeline-model-parallel-size 8 --num-layers 95 "
                + "--micro-batch-size 1 --global-batch-size 32 "
                + "--sequence-parallel --recompute-granularity selective --use-distributed-optimizer",
            full.Out
        );
        Assert.Contains("world size t·p·d = 8·8·4 = 256 GPUs", full.Out);
        var context = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--tp",
            "8",
            "--cp",
            "2",
            "--dp",
            "2",
            "--global-batch",
            "16"
        );
        Assert.Equal(0, context.Code);
        Assert.Contains(
            "--tensor-model-parallel-size 8 --pipeline-model-parallel-size 8 --num-layers 95 --context-parallel-size 2",
            context.Out
        );
        Assert.Contains("world size t·c·p·d = 8·2·8·2 = 256 GPUs", context.Out);
        var overlap = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--tp",
            "8",
            "--dp",
            "2",
            "--global-batch",
            "16",
            "--sequence-parallel",
            "--overlap-grad-reduce",
            "--overlap-param-gather",
            "--tp-comm-overlap"
        );
        Assert.Contains(
            "--use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather --tp-comm-overlap",
            overlap.Out
        );
        Assert.DoesNotContain("--attention-backend", overlap.Out);
        var unfused = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--tp",
            "8",
            "--attention-backend",
            "unfused"
        );
        Assert.Contains("--use-distributed-optimizer --attention-backend unfused", unfused.Out);
        var gatherAlone = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--overlap-param-gather"
        );
        Assert.Equal(2, gatherAlone.Code);
        Assert.Contains("needs the distributed optimizer (ZeRO-1) and --overlap-grad-reduce", gatherAlone.Err);
        var mismatch = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--account-for-embedding",
            "--format",
            "megatron",
            "--dp",
            "4",
            "--global-batch",
            "64"
        );
        Assert.Equal(2, mismatch.Code);
        Assert.Contains("m = B/(d·b) = 64/(4·1) = 16 micro-batches but the plan has 8", mismatch.Err);
        var refused = Run(
            "export",
            "--model",
            "deepseek-llm-67b",
            "--stages",
            "8",
            "--method",
            "uniform",
            "--format",
            "megatron"
        );
        Assert.Equal(2, refused.Code);
        Assert.Contains("divisible by the pipeline size p = 8", refused.Err);
    }

    [Fact]
    public void ASplitRunWithMoreStagesThanCoresIsMeasuredButNotPredicted()
    {
        var p = Environment.ProcessorCount + 1;
        var (code, output, error) = Run(
            "run-pipeline",
            "--stages",
            p.ToString(),
            "--microbatches",
            "2",
            "--seq",
            "16",
            "--json"
        );
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("predictedMakespan").ValueKind);
        Assert.True(doc.RootElement.GetProperty("measuredMakespan").GetDouble() > 0);
        Assert.Contains(
            $"{p} stages share {Environment.ProcessorCount} cores",
            doc.RootElement.GetProperty("noPrediction").GetString()
        );
    }

    [Theory]
    [InlineData("plan", "--model", "deepseek-llm-7b", "--stages", "40")] // p larger than the units
    [InlineData("plan", "--model", "deepseek-llm-7b", "--stages", "4", "--microbatches", "0")] // m < 1
    [InlineData("plan", "--model", "deepseek-llm-7b", "--stages", "4", "--memory", "1GiB")] // infeasible budget
    [InlineData("plan", "--model", "deepseek-llm-7b", "--stages", "4", "--memory", "lots")]
    [InlineData("plan", "--model", "deepseek-llm-7b", "--stages", "4", "--method", "random")]
    [InlineData("plan", "--model", "gpt-9", "--stages", "4")]
    [InlineData("plan", "--stages", "4")]
    [InlineData("simulate", "--stages", "4", "--microbatches", "8", "--forward", "-1")]
    [InlineData("simulate", "--stages", "4", "--microbatches", "8", "--schedule", "pipedream")]
    [InlineData("export", "--model", "deepseek-llm-7b", "--stages", "2", "--format", "onnx")]
    public void BadInputExitsTwo(params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", error);
    }

    [Theory]
    [InlineData("[1, -2]", "time -2")]
    [InlineData("{\"a\": 1}", "must be a non-empty JSON array")]
    [InlineData("[1, ", "not valid JSON")]
    [InlineData("[{\"forward\": \"x\"}]", "forward = \"x\"")]
    [InlineData("[1, {\"forward\": 1}]", "use all numbers or all objects")]
    public void MalformedCostsFilesAreNamed(string json, string message)
    {
        var (code, _, error) = Run("plan", "--costs", File("bad.json", json), "--stages", "1");
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }
}

public sealed class TrainCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-train-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void TrainsWritesCheckpointsAndResumes()
    {
        var (code, output, error) = Cli.Run(
            "train",
            "--model",
            "deepseek-7b-mini",
            "--out",
            _dir,
            "--steps",
            "2",
            "--batch",
            "2",
            "--seq",
            "16",
            "--warmup",
            "1",
            "--checkpoint-every",
            "1"
        );
        Assert.True(code == 0, error);
        Assert.Contains("step 2/2", output);
        Assert.True(Directory.Exists(Path.Combine(_dir, "step-000002")));
        var resumed = Cli.Run(
            "train",
            "--model",
            "deepseek-7b-mini",
            "--out",
            _dir,
            "--steps",
            "3",
            "--batch",
            "2",
            "--seq",
            "16",
            "--warmup",
            "1",
            "--resume"
        );
        Assert.Equal(0, resumed.Code);
        Assert.Contains("(step 2)", resumed.Out);
        Assert.Contains("step 3/3", resumed.Out);
        var probe = Cli.Run("probe", "--weights", Path.Combine(_dir, "step-000003"), "--n", "8", "--top", "1");
        Assert.Equal(0, probe.Code);
        Assert.Contains("best induction heads:", probe.Out);
    }

    [Theory]
    [InlineData("train", "--out", "x", "--steps", "0")]
    [InlineData("train", "--out", "x", "--model", "gpt-2")]
    [InlineData("train", "--out", "x", "--text", "/nonexistent.txt")]
    [InlineData("probe", "--model", "deepseek-7b-mini", "--n", "1")]
    public void BadInputExitsTwo(params string[] args)
    {
        var (code, _, error) = Cli.Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", error);
    }
}

public class RunPipelineCommandTests
{
    [Fact]
    public void ProfilesPlansAndRunsASplitForReal()
    {
        var (code, output, error) = Cli.Run(
            "run-pipeline",
            "--model",
            "deepseek-7b-mini",
            "--stages",
            "2",
            "--microbatches",
            "2",
            "--seq",
            "16",
            "--json"
        );
        Assert.True(code == 0, error);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Single(root.GetProperty("boundaries").EnumerateArray());
        Assert.True(root.GetProperty("measuredMakespan").GetDouble() > 0);
        Assert.True(root.GetProperty("predictedMakespan").GetDouble() > 0);
        // An untrained 4,096-token model starts near ln 4096 ≈ 8.32 nats.
        Assert.InRange(root.GetProperty("loss").GetDouble(), 7.5, 9.0);
    }

    [Fact]
    public void ProfileWritesACostsFileThatPlanReads()
    {
        var (code, output, _) = Cli.Run("profile", "--model", "deepseek-7b-mini", "--seq", "16");
        Assert.Equal(0, code);
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, output);
            var plan = Cli.Run("plan", "--costs", path, "--stages", "4", "--json");
            Assert.Equal(0, plan.Code);
            using var doc = System.Text.Json.JsonDocument.Parse(plan.Out);
            Assert.Equal(4, doc.RootElement.GetProperty("stages").GetArrayLength());
            // 30 layers + embedding + head + loss = 33 units; the last stage ends at unit 32.
            Assert.Equal(
                32,
                doc.RootElement.GetProperty("stages").EnumerateArray().Last().GetProperty("lastUnit").GetInt32()
            );
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("run-pipeline", "--stages", "2", "--schedule", "zb-h1")]
    [InlineData("run-pipeline", "--stages", "99")]
    [InlineData("profile", "--model", "gpt-2")]
    public void BadInputExitsTwo(params string[] args)
    {
        var (code, _, error) = Cli.Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", error);
    }

    [Fact]
    public void TodaysSchedulesSimulatePlanAndExportByName()
    {
        // DualPipeV on p = 8, m = 32 with F = B = W = 1 per device: each of the 16 half-size stages takes 0.5 of each,
        // so DeepSeek's bubble (PP/2 − 1)(F&B + B − 3W) = 7 · (1.5 + 1 − 1.5) = 7 on top of 32 · 3 of work.
        var simulated = JsonDocument
            .Parse(
                Cli.Run("simulate", "--stages", "8", "--microbatches", "32", "--schedule", "dualpipev", "--json").Out
            )
            .RootElement;
        Assert.Equal(32 * 3 + 7, simulated.GetProperty("makespan").GetDouble(), 9);
        var export = Cli.Run(
            "export",
            "--model",
            "deepseek-llm-7b",
            "--stages",
            "4",
            "--microbatches",
            "8",
            "--schedule",
            "zbv",
            "--format",
            "torchtitan"
        );
        Assert.Equal(0, export.Code);
        Assert.Contains("pipeline_parallel_schedule=\"ZBVZeroBubble\"", export.Out);
        var megatron = Cli.Run(
            "export",
            "--model",
            "deepseek-llm-7b",
            "--stages",
            "4",
            "--microbatches",
            "8",
            "--schedule",
            "zbv",
            "--format",
            "megatron"
        );
        Assert.Equal(2, megatron.Code);
        Assert.Contains("no Zero Bubble V", megatron.Out + megatron.Err);
        var refused = Cli.Run(
            "plan",
            "--model",
            "deepseek-llm-7b",
            "--stages",
            "3",
            "--microbatches",
            "12",
            "--schedule",
            "dualpipe"
        );
        Assert.Equal(2, refused.Code);
        Assert.Contains("even number of devices", refused.Out + refused.Err);
    }
}
