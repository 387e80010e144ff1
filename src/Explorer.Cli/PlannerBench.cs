using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Cli;

/// <summary>Planning and simulation time against problem size, medians of repeated runs in one process.</summary>
public static class PlannerBench
{
    public static void Run(TextWriter output)
    {
        var units95 = CostModel
            .Units(ModelPresets.DeepSeekLlm67B, new CostSettings())
            .Where(u => u.Kind == UnitKind.Layer)
            .ToArray();
        var random = new Random(1);
        var units10k = Enumerable
            .Range(0, 10_000)
            .Select(i => new PipelineUnit(
                $"u{i}",
                UnitKind.Layer,
                random.NextDouble(),
                random.NextDouble(),
                random.NextDouble(),
                1000,
                1000
            ))
            .ToArray();
        output.WriteLine("Pipeline planner (median of repeated runs):");
        Report(output, "optimal split, 95 units into 8 stages", 50, () =>
            BalancedPartitioner.Optimal().Partition(units95, 8)
        );
        Report(output, "optimal split, 95 units into 64 stages", 50, () =>
            BalancedPartitioner.Optimal().Partition(units95, 64)
        );
        Report(output, "optimal split, 10,000 units into 256 stages", 5, () =>
            BalancedPartitioner.Optimal().Partition(units10k, 256)
        );
        var memory = new StageMemory(long.MaxValue / 4, 16, ScheduleKind.OneFOneB, 64);
        Report(output, "memory-capped optimal, 95 units into 8 stages", 20, () =>
            BalancedPartitioner.Optimal(memory).Partition(units95, 8)
        );
        var times64 = Enumerable.Repeat(new StageTimes(1, 1, 1), 64).ToArray();
        Report(output, "simulate 1F1B, p = 64, m = 1024", 3, () =>
            ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, times64, 1024)
        );
        Report(output, "simulate ZB-H1, p = 64, m = 1024", 3, () =>
            ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleH1, times64, 1024)
        );
        var chunks = Enumerable.Repeat(new StageTimes(0.5, 0.5, 0.5), 128).ToArray();
        Report(output, "simulate interleaved, p = 64, v = 2, m = 1024", 3, () =>
            ScheduleSimulator.Simulate(ScheduleKind.Interleaved1F1B, chunks, 1024, 2)
        );
        var h200 = Cluster.Node8(Gpu.H200);
        var searched = ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, h200, 1024, 4096);
        Report(output, $"parallel search, 67B on 1,024 H200 ({searched.Considered:N0} configs)", 3, () =>
            ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, h200, 1024, 4096)
        );
        Report(output, "parallel search, 67B on 64 H200", 5, () =>
            ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, h200, 64, 1024)
        );
    }

    private static void Report(TextWriter output, string name, int repeats, Action action)
    {
        action(); // warm
        output.WriteLine($"  {name, -48} {Timing.Median(repeats, action), 10:0.000} ms");
    }
}
