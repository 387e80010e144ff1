using Explorer.Core.Pipeline;

namespace Explorer.Core.Tests.Pipeline;

/// <summary>
/// Property tests: random and hostile planner inputs (NaN, infinities, negatives, zeros, huge counts, boundaries out
/// of order) never throw, never hang, and either plan correctly or refuse with a sentence that names the bad value.
/// </summary>
public class HostilePlannerInputTests
{
    private static readonly double[] HostileTimes =
    [
        0,
        1e-300,
        1,
        3.5,
        1e6,
        1e300,
        -1,
        double.NaN,
        double.PositiveInfinity,
        double.NegativeInfinity,
    ];
    private static readonly int[] HostileCounts = [int.MinValue, -1, 0, 1, 2, 3, 7, 64, 1000, 1 << 20, int.MaxValue];

    private static T Pick<T>(Random r, IReadOnlyList<T> items) => items[r.Next(items.Count)];

    private static PlanRequest RandomRequest(Random r)
    {
        var n = r.Next(0, 40);
        var hostile = r.Next(4) == 0;
        var units = Enumerable
            .Range(0, n)
            .Select(i => new PipelineUnit(
                $"u{i}",
                UnitKind.Layer,
                hostile && r.Next(8) == 0 ? Pick(r, HostileTimes) : r.NextDouble() * 10,
                hostile && r.Next(8) == 0 ? Pick(r, HostileTimes) : r.NextDouble() * 20,
                r.NextDouble() * 10,
                hostile && r.Next(8) == 0 ? -r.Next(1000) : r.Next(1_000_000),
                r.Next(1 << 20)
            ))
            .ToArray();
        var method = (PartitionMethod)r.Next(4);
        var schedule = (ScheduleKind)r.Next(Enum.GetValues<ScheduleKind>().Length);
        return new PlanRequest
        {
            Units = units,
            Stages = r.Next(8) == 0 ? Pick(r, HostileCounts) : r.Next(1, 9),
            MicroBatches = r.Next(8) == 0 ? Pick(r, HostileCounts) : 8 * r.Next(1, 5),
            Schedule = schedule,
            VirtualStages =
                r.Next(10) == 0 ? Pick(r, HostileCounts)
                : SchedulePlacement.UsesVirtualStages(schedule) ? r.Next(1, 3)
                : 1,
            Method = method,
            Boundaries =
                method == PartitionMethod.Manual && r.Next(5) > 0 && r.Next(2) == 0
                    ? Enumerable.Range(0, r.Next(0, 8)).Select(_ => r.Next(-3, n + 3)).ToArray()
                    : null,
            MemoryBudgetBytes =
                r.Next(5) == 0 ? Pick(r, new long?[] { null, -1, 0, 1, 1L << 40, long.MaxValue }) : null,
            TransferMs = r.Next(6) == 0 ? Pick(r, HostileTimes) : r.NextDouble(),
        };
    }

    [Fact]
    public void ThousandRandomRequestsPlanOrRefuseAndPlansAreWhole()
    {
        var r = new Random(20261128);
        int planned = 0,
            refused = 0;
        for (var i = 0; i < 1000; i++)
        {
            var request = RandomRequest(r);
            var outcome = PipelinePlanner.Plan(request);
            if (!outcome.Succeeded)
            {
                refused++;
                Assert.False(string.IsNullOrWhiteSpace(outcome.Refusal));
                continue;
            }
            planned++;
            var report = outcome.Report!;
            // Every unit in exactly one stage, stages in order, the count asked for.
            Assert.Equal(request.PartitionStages, report.Plan.Stages.Count);
            Assert.Equal(0, report.Plan.Stages[0].FirstUnit);
            Assert.Equal(request.Units.Count - 1, report.Plan.Stages[^1].LastUnit);
            for (var s = 1; s < report.Plan.Stages.Count; s++)
                Assert.Equal(report.Plan.Stages[s - 1].LastUnit + 1, report.Plan.Stages[s].FirstUnit);
            // The makespan is finite and at least the busiest device's own work.
            Assert.True(double.IsFinite(report.Simulation.Makespan));
            // Each device runs every micro-batch through the stages it holds (DualPipe: half of them through each).
            var busiest =
                Enumerable
                    .Range(0, request.Stages)
                    .Max(d =>
                        SchedulePlacement
                            .StagesOn(request.Schedule, d, request.Stages, request.VirtualStages)
                            .Sum(st => report.Plan.Stages[st].Time)
                    )
                * request.MicroBatches
                / (double)ScheduleNames.WeightCopies(request.Schedule);
            Assert.True(
                report.Simulation.Makespan >= busiest - 1e-6 * Math.Max(1, busiest),
                $"makespan {report.Simulation.Makespan} < busiest device {busiest}"
            );
            Assert.InRange(report.Simulation.BubbleFraction, 0, 1);
            foreach (var format in PlanExports.Formats)
            {
                var export = PlanExports.Export(report, format);
                Assert.True(export.Text is not null ^ export.Refusal is not null);
            }
            // A plan file loads back to the same stages.
            var again = PipelinePlanner.Plan(PlanDocument.Load(PlanDocument.From(report).ToJson()));
            Assert.True(again.Succeeded, again.Refusal);
            Assert.Equal(report.Plan.Boundaries, again.Report!.Plan.Boundaries);
        }
        // The generator reaches both sides.
        Assert.True(planned > 100 && refused > 100, $"{planned} planned, {refused} refused");
    }

    [Theory]
    [InlineData(int.MaxValue, "micro-batches m = 2147483647")]
    [InlineData(0, "micro-batches m = 0")]
    [InlineData(-5, "micro-batches m = -5")]
    public void MicroBatchCountsOutsideTheRangeAreRefusedByValue(int m, string named)
    {
        var units = CostModel.FromTimes(Enumerable.Repeat(1.0, 8).ToArray());
        var outcome = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = units,
                Stages = 4,
                MicroBatches = m,
            }
        );
        Assert.False(outcome.Succeeded);
        Assert.Contains(named, outcome.Refusal);
    }

    [Fact]
    public void ASimulationTooLargeToRunHereIsRefusedWithItsSize()
    {
        // 1,024 stages × 65,536 micro-batches would be 2^26 forward and backward steps each: refused, not attempted.
        var units = CostModel.FromTimes(Enumerable.Repeat(1.0, 1024).ToArray());
        var outcome = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = units,
                Stages = 1024,
                MicroBatches = 65536,
            }
        );
        Assert.False(outcome.Succeeded);
        Assert.Contains("1,024 stages × 65,536 micro-batches", outcome.Refusal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("{\"version\": 1}")]
    [InlineData("{\"version\": 2, \"units\": [], \"stageList\": []}")]
    [InlineData(
        "{\"version\": 1, \"units\": [{\"name\": \"a\", \"kind\": \"Nope\"}], \"stageList\": [{\"firstUnit\": 0}]}"
    )]
    [InlineData(
        "{\"version\": 1, \"units\": [{\"name\": \"a\", \"kind\": \"Layer\"}], \"stageList\": [{\"firstUnit\": 5}]}"
    )]
    [InlineData(
        "{\"version\": 1, \"units\": [{\"name\": \"a\", \"kind\": \"Layer\"}], \"stageList\": "
            + "[{\"firstUnit\": 0}], \"schedule\": \"bogus\"}"
    )]
    [InlineData("{\"version\": 1e999}")]
    [InlineData("\u0000\u0001garbage")]
    public void MalformedPlanFilesAreRefusedWithAReason(string json)
    {
        var e = Assert.Throws<ArgumentException>(() => PlanDocument.Load(json));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }
}
