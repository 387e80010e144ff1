using Explorer.Core.Accounting;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests.Pipeline;

public class PlannerTests
{
    private static readonly IReadOnlyList<PipelineUnit> Units7B = CostModel.Units(
        ModelPresets.DeepSeekLlm7B,
        new CostSettings()
    );
    private static readonly IReadOnlyList<PipelineUnit> Units67B = CostModel.Units(
        ModelPresets.DeepSeekLlm67B,
        new CostSettings()
    );

    private static PlanReport Plan(PlanRequest request)
    {
        var outcome = PipelinePlanner.Plan(request);
        Assert.True(outcome.Succeeded, outcome.Refusal);
        return outcome.Report!;
    }

    [Fact]
    public void PlanSimulatesItsStagesAndCountsMemoryPerDevice()
    {
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 16,
            }
        );
        Assert.Equal(4, report.Plan.Stages.Count);
        // Device d's state is 16 bytes per parameter of its stage; the parameters add up to the model's.
        Assert.Equal(
            ParameterBreakdown.Of(ModelPresets.DeepSeekLlm7B).Total * 16,
            report.Memory.Sum(m => m.StateBytes)
        );
        // 1F1B: device d holds p − d micro-batches of its stage's activations at the peak.
        for (var d = 0; d < 4; d++)
            Assert.Equal((4 - d) * report.Plan.Stages[d].ActivationBytes, report.Memory[d].PeakActivationBytes);
        Assert.Equal(16 * 4096 / (report.Simulation.Makespan / 1000), report.TokensPerSecond, 6);
    }

    [Fact]
    public void TheVSchedulesCutTwoStagesPerDeviceAndPlaceThemInAV()
    {
        // ZBV on p = 4: the model in 2p = 8 stages, device r holding stages r and 7 − r, so that the first device
        // holds the embedding and the head.
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 16,
                Schedule = ScheduleKind.ZeroBubbleV,
            }
        );
        Assert.Equal(8, report.Plan.Stages.Count);
        Assert.Equal([0, 1, 2, 3, 3, 2, 1, 0], report.Plan.Stages.Select(s => report.DeviceOf(s.Index)));
        for (var d = 0; d < 4; d++)
            Assert.Equal(
                (report.Plan.Stages[d].Parameters + report.Plan.Stages[7 - d].Parameters) * 16L,
                report.Memory[d].StateBytes
            );
        Assert.Equal(
            ParameterBreakdown.Of(ModelPresets.DeepSeekLlm7B).Total * 16,
            report.Memory.Sum(m => m.StateBytes)
        );
        // DualPipe: p stages, each on two devices (one per direction): the parameters twice over.
        var dual = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 16,
                Schedule = ScheduleKind.DualPipe,
            }
        );
        Assert.Equal(4, dual.Plan.Stages.Count);
        Assert.Equal(
            2 * ParameterBreakdown.Of(ModelPresets.DeepSeekLlm7B).Total * 16,
            dual.Memory.Sum(m => m.StateBytes)
        );
        Assert.Equal(
            (dual.Plan.Stages[1].Parameters + dual.Plan.Stages[2].Parameters) * 16L,
            dual.Memory[1].StateBytes
        );
        // Their engines' rules refuse the plan, naming the rule.
        var odd = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 3,
                MicroBatches = 12,
                Schedule = ScheduleKind.DualPipe,
            }
        );
        Assert.Contains("even number of devices", odd.Refusal);
        var few = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 6,
                Schedule = ScheduleKind.DualPipeV,
            }
        );
        Assert.Contains("at least 2p = 8 micro-batches", few.Refusal);
        var chunks = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Schedule = ScheduleKind.ZeroBubbleV,
                VirtualStages = 3,
            }
        );
        Assert.Contains("only the interleaved schedules take them", chunks.Refusal);
    }

    [Fact]
    public void MemoryBudgetIsRespectedOrRefusedClearly()
    {
        var open = Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 8,
                MicroBatches = 32,
            }
        );
        var need = open.Memory.Max(m => m.TotalBytes);
        var capped = Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 8,
                MicroBatches = 32,
                MemoryBudgetBytes = (long)(need * 0.97),
            }
        );
        Assert.All(capped.Memory, m => Assert.True(m.TotalBytes <= (long)(need * 0.97)));
        Assert.True(capped.Plan.MaxStageTime >= open.Plan.MaxStageTime);
        var refused = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = Units67B,
                Stages = 8,
                MicroBatches = 32,
                MemoryBudgetBytes = 1L << 30,
            }
        );
        Assert.False(refused.Succeeded);
        Assert.Contains("alone needs", refused.Refusal);
    }

    [Fact]
    public void BadRequestsAreNamed()
    {
        var outcome = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 40,
                MicroBatches = 0,
            }
        );
        Assert.Contains("micro-batches m = 0", outcome.Refusal);
        Assert.Contains("40 stages is more than the 33 units", outcome.Refusal);
    }

    [Fact]
    public void InterleavedPlansSplitIntoPTimesVChunks()
    {
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                VirtualStages = 2,
                Schedule = ScheduleKind.Interleaved1F1B,
                MicroBatches = 8,
            }
        );
        Assert.Equal(8, report.Plan.Stages.Count);
        Assert.Equal(4, report.Memory.Count);
        Assert.Equal(5, report.DeviceOf(5) + 4);
    }

    [Fact]
    public void DivisibilityShowsWhatThePaperMeant()
    {
        var rows7 = DivisibilityAnalysis.Compute(ModelPresets.DeepSeekLlm7B, new CostSettings(), 16);
        var rows67 = DivisibilityAnalysis.Compute(ModelPresets.DeepSeekLlm67B, new CostSettings(), 16);
        Assert.Equal(16, rows7.Count);
        Assert.Equal(1.0, rows7[0].OptimalImbalance, 9);
        // Megatron refuses p that does not divide the layer count: 30, 31, 32 for the 7B; 95, 96, 97 for the 67B.
        int[] Divisors(int n) => Enumerable.Range(1, 16).Where(p => n % p == 0).ToArray();
        Assert.Equal(Divisors(30), rows7.Where(r => r.UniformImbalance is not null).Select(r => r.Stages));
        Assert.Equal(Divisors(32), rows7.Where(r => r.UniformPlusTwoImbalance is not null).Select(r => r.Stages));
        Assert.Equal(Divisors(95), rows67.Where(r => r.UniformImbalance is not null).Select(r => r.Stages));
        Assert.Equal(Divisors(96), rows67.Where(r => r.UniformPlusOneImbalance is not null).Select(r => r.Stages));
        Assert.All(rows7.Concat(rows67), r =>
            Assert.True(r.OptimalImbalance <= (r.UniformImbalance ?? double.MaxValue) + 1e-9)
        );
    }
}

public class ExportTests
{
    private static readonly IReadOnlyList<PipelineUnit> Units7B = CostModel.Units(
        ModelPresets.DeepSeekLlm7B,
        new CostSettings()
    );

    private static PlanReport Plan(PlanRequest request) => PipelinePlanner.Plan(request).Report!;

    [Fact]
    public void UniformPlansExportMegatronFlags()
    {
        var plain = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Method = PartitionMethod.Uniform,
            }
        );
        // Pipeline alone: t = d = 1, one sequence per micro-batch, so the 8 micro-batches are a global batch of 8.
        Assert.Equal(
            "--tensor-model-parallel-size 1 --pipeline-model-parallel-size 2 --num-layers 30 "
                + "--micro-batch-size 1 --global-batch-size 8",
            PlanExports.Megatron(plain).Text!.Split('\n')[1]
        );
        var accounted = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Uniform,
                Uniform = new UniformPartitioner(AccountForEmbedding: true, AccountForLoss: true),
            }
        );
        Assert.EndsWith(
            "--account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split",
            PlanExports.Megatron(accounted).Text
        );
    }

    [Fact]
    public void OtherPlansExportAMegatronLayout()
    {
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Method = PartitionMethod.Manual,
                Boundaries = [14],
            }
        );
        // Stage 0: embedding + layers 0–12 (units 0–13); stage 1: layers 13–29, head and loss.
        var expected = "E" + new string('t', 13) + "|" + new string('t', 17) + "L";
        Assert.EndsWith($"--pipeline-model-parallel-layout \"{expected}\"", PlanExports.Megatron(report).Text);
        var split = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Method = PartitionMethod.Manual,
                Boundaries = [32],
            }
        );
        Assert.Contains("output layer and the loss together", PlanExports.Megatron(split).Refusal);
        var zb = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Schedule = ScheduleKind.ZeroBubbleH1,
            }
        );
        Assert.Contains("no Zero Bubble H1", PlanExports.Megatron(zb).Refusal);
    }

    [Fact]
    public void DeepSpeedAcceptsItsOwnMethodsOnly()
    {
        // DeepSpeed's layer list is the 32 units before the loss; partition_uniform(32, 4) = [0, 8, 16, 24, 32].
        Assert.Equal([0, 8, 16, 24, 32], PlanExports.DeepSpeedUniformParts(32, 4));
        Assert.Equal([0, 3, 6, 8, 10], PlanExports.DeepSpeedUniformParts(10, 4));
        var uniform = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Manual,
                Boundaries = [8, 16, 24],
            }
        );
        Assert.Contains("partition_method='uniform'", PlanExports.DeepSpeed(uniform).Text);
        var parameters = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Parameters,
            }
        );
        Assert.Contains("partition_method='parameters'", PlanExports.DeepSpeed(parameters).Text);
        var other = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Manual,
                Boundaries = [2, 16, 24],
            }
        );
        Assert.Contains("only by 'uniform', 'parameters' or 'type:REGEX'", PlanExports.DeepSpeed(other).Refusal);
    }

    [Fact]
    public void TorchtitanNamesTheModulesOfEachModelChunk()
    {
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Method = PartitionMethod.Uniform,
                Uniform = new UniformPartitioner(AccountForEmbedding: true, AccountForLoss: true),
            }
        );
        var text = PlanExports.Torchtitan(report).Text!;
        // 32 units (embedding, 30 layers, head; the loss follows the head) in 4 stages of 8.
        Assert.Contains(
            "[\"tok_embeddings\", \"layers.0\", \"layers.1\", \"layers.2\", \"layers.3\", \"layers.4\", "
                + "\"layers.5\", \"layers.6\"], [\"layers.7\"",
            text
        );
        Assert.Contains("\"layers.29\", \"norm\", \"lm_head\"]]", text);
        Assert.Contains("pipeline_parallel_schedule=\"1F1B\"", text);
        // A chunk may hold only the head: torchtitan takes any list of module names per chunk.
        var atHead = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Method = PartitionMethod.Manual,
                Boundaries = [31],
            }
        );
        Assert.Contains("[\"norm\", \"lm_head\"]]", PlanExports.Torchtitan(atHead).Text);
        var zb = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 2,
                MicroBatches = 8,
                Schedule = ScheduleKind.ZeroBubbleH1,
            }
        );
        Assert.Contains("no ZB-H1 schedule", PlanExports.Torchtitan(zb).Refusal);
    }

    [Theory]
    [InlineData(ScheduleKind.ZeroBubbleV, "ZBVZeroBubble", 1, 8)]
    [InlineData(ScheduleKind.DualPipeV, "DualPipeV", 1, 8)]
    [InlineData(ScheduleKind.InterleavedZeroBubble, "InterleavedZeroBubble", 2, 8)]
    public void TorchtitanRunsTodaysSchedulesByTheirTorchNames(ScheduleKind schedule, string name, int v, int parts)
    {
        // torch.distributed.pipelining's get_schedule_class names (pytorch 00722e6); model parts listed in stage
        // order, which torchtitan places on ranks itself ("v" style for ZBV and DualPipeV).
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Schedule = schedule,
                VirtualStages = v,
            }
        );
        var text = PlanExports.Torchtitan(report).Text!;
        Assert.Contains($"pipeline_parallel_schedule=\"{name}\"", text);
        var list = text[text.IndexOf("module_fqns_per_model_part=", StringComparison.Ordinal)..].Split('\n')[0];
        Assert.Equal(parts, list.Split("], [").Length);
        Assert.Equal(SchedulePlacement.IsV(schedule), text.Contains("rank r runs model parts r and 7 − r"));
        // Megatron-LM and DeepSpeed run none of them; DualPipe's two directions run in DeepSeek's library only.
        Assert.Contains(
            "Megatron-LM's pipeline schedules are 1F1B and interleaved 1F1B",
            PlanExports.Megatron(report).Refusal
        );
        Assert.Contains("DeepSpeed's pipeline engine runs its own 1F1B", PlanExports.DeepSpeed(report).Refusal);
        var dual = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 8,
                Schedule = ScheduleKind.DualPipe,
            }
        );
        Assert.Contains("Choose dualpipev", PlanExports.Torchtitan(dual).Refusal);
    }

    [Fact]
    public void JsonPlanLoadsBackToTheSamePlan()
    {
        var report = Plan(
            new PlanRequest
            {
                Units = Units7B,
                Stages = 4,
                MicroBatches = 12,
                Schedule = ScheduleKind.ZeroBubbleH1,
            }
        );
        var json = PlanExports.Export(report, "json").Text!;
        var again = Plan(PlanDocument.Load(json));
        Assert.Equal(report.Plan.Boundaries, again.Plan.Boundaries);
        Assert.Equal(report.Simulation.Makespan, again.Simulation.Makespan, 9);
        Assert.Contains(
            "not valid",
            Assert.Throws<ArgumentException>(() => PlanDocument.Load("{\"version\": ")).Message
        );
        Assert.Contains(
            "version 7",
            Assert
                .Throws<ArgumentException>(() => PlanDocument.Load(json.Replace("\"version\": 1", "\"version\": 7")))
                .Message
        );
        Assert.Contains(
            "Unknown export format 'onnx'",
            Assert.Throws<ArgumentException>(() => PlanExports.Export(report, "onnx")).Message
        );
    }
}

public class UnitNumberingTests
{
    [Fact]
    public void TheNumberingIsTheCostModelsOrder()
    {
        var spec = ModelPresets.DeepSeekLlm7B;
        var units = CostModel.Units(spec, new CostSettings());
        Assert.Equal(UnitNumbering.Count(spec.Layers), units.Count);
        Assert.Equal(UnitKind.Embedding, units[0].Kind);
        for (var layer = 0; layer < spec.Layers; layer++)
            Assert.Equal(UnitKind.Layer, units[UnitNumbering.OfLayer(layer)].Kind);
        Assert.Equal(UnitKind.Head, units[UnitNumbering.Head(spec.Layers)].Kind);
        Assert.Equal(UnitKind.Loss, units[^1].Kind);
        // Units 0–5 hold layers 1–5 (1-based); the head and loss alone hold none.
        Assert.Equal((1, 5), UnitNumbering.LayersIn(0, 5, spec.Layers));
        var (first, last) = UnitNumbering.LayersIn(31, 32, spec.Layers);
        Assert.True(first > last);
    }
}

public class FlopConventionTests
{
    [Fact]
    public void MegatronsCountAddsTheRecomputedForwardToTheBackward()
    {
        // 7B at s = 4096, b = 1, 400 TFLOP/s: F = s·(2N + 4·s·h) FLOPs, N = the layer's matmul weights.
        var spec = ModelPresets.DeepSeekLlm7B;
        double s = 4096,
            h = spec.HiddenSize,
            n = ParameterBreakdown.Of(spec).PerLayer.Matmul;
        double Ms(double flops) => flops / 400e12 * 1e3;
        var forward = Ms(s * (2 * n + 4 * s * h));
        Units(FlopConvention.ZeroBubble, Recomputation.Full, out var zb);
        Assert.Equal(forward, zb.Forward, 9);
        Assert.Equal(Ms(s * (2 * n + 8 * s * h)), zb.InputGradient, 9);
        // Full recomputation runs the forward again inside the backward; selective, the attention core 4·s²·h.
        Units(FlopConvention.Megatron, Recomputation.Full, out var full);
        Assert.Equal(zb.InputGradient + forward, full.InputGradient, 9);
        Units(FlopConvention.Megatron, Recomputation.Selective, out var selective);
        Assert.Equal(zb.InputGradient + Ms(4 * s * s * h), selective.InputGradient, 9);
        Units(FlopConvention.Megatron, Recomputation.None, out var none);
        Assert.Equal(zb.InputGradient, none.InputGradient, 9);
        Assert.Equal(zb.WeightGradient, full.WeightGradient, 9);

        static void Units(FlopConvention flops, Recomputation recomputation, out PipelineUnit layer) =>
            layer = CostModel.Units(
                ModelPresets.DeepSeekLlm7B,
                new CostSettings { Flops = flops, Recomputation = recomputation }
            )[1];
    }
}
