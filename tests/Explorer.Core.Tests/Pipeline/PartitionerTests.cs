using Explorer.Core.Accounting;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests.Pipeline;

public class PartitionerTests
{
    private static PipelineUnit U(
        double time,
        long parameters = 0,
        long activations = 0,
        UnitKind kind = UnitKind.Layer,
        string name = "u"
    ) => new(name, kind, time / 3, time / 3, time / 3, parameters, activations);

    // Every contiguous split into p non-empty stages, by brute force.
    private static IEnumerable<int[]> AllSplits(int n, int p)
    {
        if (p == 1)
        {
            yield return [0];
            yield break;
        }
        foreach (var rest in AllSplits(n, p - 1))
            for (var start = rest[^1] + 1; start <= n - 1; start++)
                yield return [.. rest, start];
    }

    private static double MaxStage(IReadOnlyList<PipelineUnit> units, int[] firsts) =>
        new StagePlan(units, firsts, "brute").MaxStageTime;

    [Fact]
    public void OptimalEqualsBruteForceOnRandomCases()
    {
        var random = new Random(17);
        for (var trial = 0; trial < 300; trial++)
        {
            var n = random.Next(1, 11);
            var p = random.Next(1, n + 1);
            var units = Enumerable
                .Range(0, n)
                .Select(_ => U(Math.Round(random.NextDouble() * 10, random.Next(0, 3))))
                .ToArray();
            var expected = AllSplits(n, p).Min(s => MaxStage(units, s));
            var plan = BalancedPartitioner.Optimal().Partition(units, p).Plan!;
            Assert.Equal(p, plan.Stages.Count);
            Assert.Equal(expected, plan.MaxStageTime, 9);
        }
    }

    [Fact]
    public void MemoryCappedOptimalEqualsBruteForceAndNeverExceedsTheBudget()
    {
        var random = new Random(23);
        for (var trial = 0; trial < 300; trial++)
        {
            var n = random.Next(2, 10);
            var p = random.Next(1, n + 1);
            var units = Enumerable
                .Range(0, n)
                .Select(_ => U(random.Next(1, 10), random.Next(0, 5), random.Next(0, 5)))
                .ToArray();
            var memory = new StageMemory(random.Next(5, 60), 2, ScheduleKind.OneFOneB, 4);
            bool Fits(int[] firsts) =>
                Enumerable
                    .Range(0, firsts.Length)
                    .All(k =>
                        memory.Bytes(units, firsts[k], k + 1 < firsts.Length ? firsts[k + 1] : n, k, p)
                        <= memory.BudgetBytes
                    );
            var feasible = AllSplits(n, p).Where(Fits).ToArray();
            var result = BalancedPartitioner.Optimal(memory).Partition(units, p);
            if (feasible.Length == 0)
            {
                Assert.False(result.Succeeded);
                Assert.False(string.IsNullOrWhiteSpace(result.Refusal));
                continue;
            }
            Assert.True(result.Succeeded, result.Refusal);
            Assert.Equal(feasible.Min(s => MaxStage(units, s)), result.Plan!.MaxStageTime, 9);
            Assert.True(Fits([.. result.Plan.Stages.Select(s => s.FirstUnit)]));
        }
    }

    [Fact]
    public void InfeasibleBudgetNamesTheUnitThatCannotFit()
    {
        var units = new[] { U(1, 10), U(1, 1000, name: "layers.1"), U(1, 10) };
        var result = BalancedPartitioner.Optimal(new StageMemory(100, 1, ScheduleKind.OneFOneB, 1)).Partition(units, 2);
        Assert.False(result.Succeeded);
        Assert.Contains("Unit 1 (layers.1) alone needs", result.Refusal);
    }

    [Fact]
    public void DeepSpeedParametersBalancesParameterCounts()
    {
        // Worked by hand: [embedding 100 | 10 10 10 10 | head 100, loss 0] is the only split with largest stage 100.
        var units = new[]
        {
            U(0, 100, kind: UnitKind.Embedding),
            U(5, 10),
            U(5, 10),
            U(5, 10),
            U(5, 10),
            U(1, 100, kind: UnitKind.Head),
            U(1, 0, kind: UnitKind.Loss),
        };
        var plan = BalancedPartitioner.Parameters().Partition(units, 3).Plan!;
        Assert.Equal([0, 1, 5], plan.Stages.Select(s => s.FirstUnit));
        Assert.Equal([100L, 40, 100], plan.Stages.Select(s => s.Parameters));
    }

    private static IReadOnlyList<PipelineUnit> DeepSeek(ModelSpec spec) => CostModel.Units(spec, new CostSettings());

    [Fact]
    public void UniformFollowsMegatronOnThe7B()
    {
        var units = DeepSeek(ModelPresets.DeepSeekLlm7B); // embedding, 30 layers, head, loss: 33 units
        var two = new UniformPartitioner().Partition(units, 2).Plan!;
        // embedding + layers 0–14 | layers 15–29 + head + loss
        Assert.Equal([0, 16], two.Stages.Select(s => s.FirstUnit));
        Assert.Equal([16, 17], two.Stages.Select(s => s.UnitCount));

        var refused = new UniformPartitioner().Partition(units, 4);
        Assert.Contains("(30 decoder layers = 30) to be divisible by the pipeline size p = 4", refused.Refusal);

        // --account-for-embedding and --account-for-loss: 32 slots, 8 per stage; the ends hold one layer fewer.
        var both = new UniformPartitioner(AccountForEmbedding: true, AccountForLoss: true).Partition(units, 4).Plan!;
        Assert.Equal([0, 8, 16, 24], both.Stages.Select(s => s.FirstUnit));
        Assert.Equal([8, 8, 8, 9], both.Stages.Select(s => s.UnitCount)); // emb + 7 | 8 | 8 | 7 + head + loss
    }

    [Fact]
    public void The67BSplitsEvenlyOnlyWhenTheEmbeddingCounts()
    {
        var units = DeepSeek(ModelPresets.DeepSeekLlm67B); // 95 layers
        foreach (var p in new[] { 2, 4, 8, 16 })
        {
            Assert.False(new UniformPartitioner().Partition(units, p).Succeeded);
            var plan = new UniformPartitioner(AccountForEmbedding: true).Partition(units, p).Plan!;
            Assert.Equal(96 / p - 1, plan.Stages[0].UnitCount - 1); // first stage: the embedding + 96/p − 1 layers
        }
    }

    [Fact]
    public void FixedEndsMustLeaveADivisibleMiddle()
    {
        var units = DeepSeek(ModelPresets.DeepSeekLlm7B);
        var plan = new UniformPartitioner(FirstStageLayers: 6, LastStageLayers: 6).Partition(units, 4).Plan!;
        Assert.Equal([7, 9, 9, 8], plan.Stages.Select(s => s.UnitCount)); // emb + 6 | 9 | 9 | 6 + head + loss
        Assert.Contains(
            "17 layers left after fixing the ends to divide evenly over the other 2 stages",
            new UniformPartitioner(FirstStageLayers: 7, LastStageLayers: 6).Partition(units, 4).Refusal
        );
    }

    [Fact]
    public void ManualBoundariesAreChecked()
    {
        var units = Enumerable.Range(0, 6).Select(_ => U(1)).ToArray();
        Assert.Equal(
            [0, 2, 5],
            new ManualPartitioner([2, 5]).Partition(units, 3).Plan!.Stages.Select(s => s.FirstUnit)
        );
        Assert.Contains("need 2 boundaries", new ManualPartitioner([2]).Partition(units, 3).Refusal);
        Assert.Contains(
            "every stage needs at least one unit",
            new ManualPartitioner([3, 3]).Partition(units, 3).Refusal
        );
        Assert.Contains("beyond the last unit 5", new ManualPartitioner([2, 6]).Partition(units, 3).Refusal);
    }

    [Fact]
    public void TooManyStagesAreRefused()
    {
        var units = Enumerable.Range(0, 3).Select(_ => U(1)).ToArray();
        foreach (
            IPartitioner partitioner in new IPartitioner[]
            {
                BalancedPartitioner.Optimal(),
                BalancedPartitioner.Parameters(),
                new UniformPartitioner(),
            }
        )
            Assert.Contains("more than the 3 units", partitioner.Partition(units, 4).Refusal);
        Assert.Contains(
            "weights must be finite and not negative",
            BalancedPartitioner.Optimal().Partition([U(-3)], 1).Refusal
        );
    }
}

public class CostModelTests
{
    [Fact]
    public void LayerCostsFollowZeroBubblesAccountingForMhaWithA4hFfn()
    {
        // MHA, two-matrix FFN of 4h: N = 12h², so F = s·b·h·(24h + 4s), B = s·b·h·(24h + 8s), W = 24·s·b·h².
        var spec = new ModelSpec("gpt", 4, 1024, 4096, 16, 16, 50000, 2048, FfnKind: FfnKind.Gelu);
        var settings = new CostSettings
        {
            SequenceLength = 2048,
            MicroBatchSize = 2,
            DeviceTflops = 100,
        };
        double s = 2048,
            b = 2,
            h = 1024,
            toMs = 1e3 / 100e12;
        var layer = CostModel.Units(spec, settings).Single(u => u.Name == "layers.0");
        Assert.Equal(s * b * h * (24 * h + 4 * s) * toMs, layer.Forward, 9);
        Assert.Equal(s * b * h * (24 * h + 8 * s) * toMs, layer.InputGradient, 9);
        Assert.Equal(24 * s * b * h * h * toMs, layer.WeightGradient, 9);
        Assert.Equal(ParameterBreakdown.Of(spec).PerLayer.Total, layer.Parameters);
        Assert.Equal((long)(s * b * h * 34), layer.ActivationBytes); // selective recomputation by default
    }

    [Fact]
    public void AFusedCausalKernelDoesHalfTheAttentionCoresWork()
    {
        // Each query attends to s/2 keys on average: F = s·b·h·(24h + 2s), B = s·b·h·(24h + 4s), W unchanged, and
        // selective recomputation runs the (halved) attention core again: 2·s²·b·h.
        var spec = new ModelSpec("gpt", 4, 1024, 4096, 16, 16, 50000, 2048, FfnKind: FfnKind.Gelu);
        double s = 2048,
            b = 2,
            h = 1024;
        var causal = CostModel.Layer(spec, 2048, 2, Recomputation.Selective, causalKernel: true);
        Assert.Equal(s * b * h * (24 * h + 2 * s), causal.Forward, 6);
        Assert.Equal(s * b * h * (24 * h + 4 * s), causal.InputGradient, 6);
        Assert.Equal(24 * s * b * h * h, causal.WeightGradient, 6);
        Assert.Equal(2 * s * s * b * h, causal.Recomputed, 6);
    }

    [Fact]
    public void UnitsCoverTheWholeModel()
    {
        var units = CostModel.Units(ModelPresets.DeepSeekLlm67B, new CostSettings());
        Assert.Equal(95 + 3, units.Count);
        Assert.Equal(ParameterBreakdown.Of(ModelPresets.DeepSeekLlm67B).Total, units.Sum(u => u.Parameters));
        Assert.Equal([UnitKind.Embedding, UnitKind.Layer], units.Take(2).Select(u => u.Kind));
        Assert.Equal([UnitKind.Head, UnitKind.Loss], units.TakeLast(2).Select(u => u.Kind));
    }

    [Fact]
    public void BadSettingsAndTimesAreNamed()
    {
        Assert.Contains(
            "micro-batch size 0",
            Assert
                .Throws<ArgumentException>(() =>
                    CostModel.Units(ModelPresets.DeepSeekLlm7B, new CostSettings { MicroBatchSize = 0 })
                )
                .Message
        );
        Assert.Contains(
            "Unit 1 has time -2",
            Assert.Throws<ArgumentException>(() => CostModel.FromTimes([1, -2])).Message
        );
    }
}
