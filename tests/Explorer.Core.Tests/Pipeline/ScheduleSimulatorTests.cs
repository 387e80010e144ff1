using Explorer.Core.Pipeline;

namespace Explorer.Core.Tests.Pipeline;

public class ScheduleSimulatorTests
{
    private static StageTimes[] Equal(int p, double f, double b, double w) => Enumerable.Repeat(new StageTimes(f, b, w), p).ToArray();

    [Theory]
    [InlineData(ScheduleKind.GPipe, 2, 1)]
    [InlineData(ScheduleKind.GPipe, 4, 8)]
    [InlineData(ScheduleKind.OneFOneB, 2, 4)]
    [InlineData(ScheduleKind.OneFOneB, 4, 8)]
    [InlineData(ScheduleKind.OneFOneB, 8, 16)]
    [InlineData(ScheduleKind.OneFOneB, 8, 3)]
    public void EqualStagesGiveTheClosedFormBubble(ScheduleKind schedule, int p, int m)
    {
        // F = 1, backward B + W = 2: makespan (m + p − 1)(F + B + W), bubble (p − 1)/(m + p − 1).
        var result = ScheduleSimulator.Simulate(schedule, Equal(p, 1, 1.5, 0.5), m);
        Assert.Equal((m + p - 1) * 3.0, result.Makespan, 9);
        Assert.Equal((p - 1.0) / (m + p - 1), result.BubbleFraction, 9);
        Assert.All(result.BusyTime, busy => Assert.Equal(3.0 * m, busy, 9));
    }

    [Theory]
    [InlineData(4, 2, 8)]
    [InlineData(4, 3, 4)]
    [InlineData(2, 4, 6)]
    public void InterleavedBubbleShrinksByV(int p, int v, int m)
    {
        // Each device's work split into v chunks of F/v, (B+W)/v: bubble (p − 1)/(v·m + p − 1).
        var chunks = Equal(p * v, 1.0 / v, 2.0 / v, 0);
        var result = ScheduleSimulator.Simulate(ScheduleKind.Interleaved1F1B, chunks, m, v);
        Assert.Equal((p - 1.0) / (v * m + p - 1), result.BubbleFraction, 9);
        Assert.Equal(3.0 * m + (p - 1) * 3.0 / v, result.Makespan, 9);
    }

    [Theory]
    [InlineData(2, 4, 1, 1, 1)]
    [InlineData(4, 8, 1, 1, 1)]
    [InlineData(8, 16, 1, 1, 1)]
    [InlineData(4, 12, 2, 2, 2)]
    public void ZeroBubbleH1MatchesThePaper(int p, int m, double f, double b, double w)
    {
        // Zero Bubble (arXiv 2401.10241, Table 2): ZB-H1 idles (p − 1)(T_F + T_B − T_W) per device.
        var result = ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleH1, Equal(p, f, b, w), m);
        Assert.Equal(m * (f + b + w) + (p - 1) * (f + b - w), result.Makespan, 9);
        // Same activation memory as 1F1B: device i holds at most p − i micro-batches.
        Assert.Equal(Enumerable.Range(0, p).Select(i => Math.Min(p - i, m)), result.PeakInFlight);
    }

    [Theory]
    [InlineData(4, 12, 1, 1.2, 0.8)]
    [InlineData(4, 8, 1, 0.5, 1.5)]
    [InlineData(6, 12, 0.7, 1.3, 1)]
    public void ZeroBubbleH1WithUnequalTimesBeats1F1BAndRespectsTheLowerBound(int p, int m, double f, double b, double w)
    {
        // The closed form describes the paper's handcrafted schedule; with unequal F, B, W the simulator's W placement
        // (fill whatever gap is left) lands near it, never under the bound: the last device waits (p − 1)·T_F for its
        // first input and then has m(F + B + W) of work; and it always beats 1F1B.
        var zb = ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleH1, Equal(p, f, b, w), m).Makespan;
        var oneF = ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(p, f, b, w), m).Makespan;
        Assert.True(zb >= m * (f + b + w) + (p - 1) * f - 1e-9);
        Assert.True(zb < oneF);
    }

    [Fact]
    public void OneFOneBHoldsPMinusIMicroBatchesAndGPipeHoldsAll()
    {
        var oneF = ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(4, 1, 1, 1), 10, activationBytes: [5, 5, 5, 5]);
        Assert.Equal([4, 3, 2, 1], oneF.PeakInFlight);
        Assert.Equal([20L, 15, 10, 5], oneF.PeakActivationBytes);
        var gpipe = ScheduleSimulator.Simulate(ScheduleKind.GPipe, Equal(4, 1, 1, 1), 10);
        Assert.All(gpipe.PeakInFlight, n => Assert.Equal(10, n));
    }

    [Fact]
    public void TransfersAreAddedBetweenDevices()
    {
        // p = 2, m = 1, F = 1, B + W = 2, transfer t: F0 [0,1], F1 [1+t, 2+t], B1 [2+t, 4+t], B0 [4+2t, 6+2t].
        var result = ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(2, 1, 1, 1), 1, transfer: 0.25);
        Assert.Equal(6.5, result.Makespan, 9);
    }

    [Theory]
    [InlineData(ScheduleKind.GPipe, 1)]
    [InlineData(ScheduleKind.OneFOneB, 1)]
    [InlineData(ScheduleKind.Interleaved1F1B, 2)]
    [InlineData(ScheduleKind.ZeroBubbleH1, 1)]
    public void TimelinesRespectDependenciesOnUnevenStages(ScheduleKind schedule, int v)
    {
        var random = new Random(5);
        int p = 4, m = 8;
        var times = Enumerable.Range(0, p * v).Select(_ => new StageTimes(random.NextDouble() + 0.1, random.NextDouble() + 0.1, random.NextDouble() + 0.1)).ToArray();
        var result = ScheduleSimulator.Simulate(schedule, times, m, v, transfer: 0.05);
        var split = schedule == ScheduleKind.ZeroBubbleH1;
        Assert.Equal(p * v * m * (split ? 3 : 2), result.Timeline.Count);
        foreach (var device in result.Timeline.GroupBy(o => o.Device))
        {
            var ops = device.OrderBy(o => o.Start).ToArray();
            for (var i = 1; i < ops.Length; i++)
                Assert.True(ops[i].Start >= ops[i - 1].End - 1e-12, "ops overlap on a device");
        }
        int Stage(TimelineOp o) => o.Chunk * p + o.Device;
        var byKey = result.Timeline.ToDictionary(o => (Stage(o), o.MicroBatch, o.Kind));
        var backward = split ? OpKind.InputGradient : OpKind.Backward;
        foreach (var op in result.Timeline)
        {
            var s = Stage(op);
            if (op.Kind == OpKind.Forward && s > 0)
                Assert.True(op.Start >= byKey[(s - 1, op.MicroBatch, OpKind.Forward)].End - 1e-12);
            if (op.Kind == backward)
                Assert.True(op.Start >= (s == p * v - 1 ? byKey[(s, op.MicroBatch, OpKind.Forward)].End : byKey[(s + 1, op.MicroBatch, backward)].End) - 1e-12);
            if (op.Kind == OpKind.WeightGradient)
                Assert.True(op.Start >= byKey[(s, op.MicroBatch, OpKind.InputGradient)].End - 1e-12);
        }
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        Assert.Contains("m = 0", Assert.Throws<ArgumentException>(() => ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(2, 1, 1, 1), 0)).Message);
        Assert.Contains("multiple of the devices", Assert.Throws<ArgumentException>(() => ScheduleSimulator.Simulate(ScheduleKind.Interleaved1F1B, Equal(8, 1, 1, 1), 5, 2)).Message);
        Assert.Contains("F = -1", Assert.Throws<ArgumentException>(() => ScheduleSimulator.Simulate(ScheduleKind.GPipe, Equal(2, -1, 1, 1), 2)).Message);
        Assert.Contains("interleaved schedule only", Assert.Throws<ArgumentException>(() => ScheduleSimulator.Simulate(ScheduleKind.GPipe, Equal(4, 1, 1, 1), 2, 2)).Message);
        Assert.Contains("Unknown schedule 'pipedream'", Assert.Throws<ArgumentException>(() => ScheduleNames.Parse("pipedream")).Message);
    }

    [Fact]
    public void AMeasuredTimelineGetsItsBusyTimeAndBubble()
    {
        // Device 0 busy 0–1 and 2–4 (3 ms), device 1 busy 1–2 (1 ms), over 4 ms: 1 − 4 / (2 · 4) = 0.5.
        TimelineOp[] ops =
        [
            new(0, 0, 0, OpKind.Forward, 0, 1), new(1, 0, 0, OpKind.Forward, 1, 1.5), new(1, 0, 0, OpKind.Backward, 1.5, 2),
            new(0, 0, 0, OpKind.Backward, 2, 4),
        ];
        var measured = SimulationResult.Measured(ScheduleKind.GPipe, ops, 4);
        Assert.Equal(2, measured.Devices);
        Assert.Equal(1, measured.MicroBatches);
        Assert.Equal([3.0, 1.0], measured.BusyTime);
        Assert.Equal(0.5, measured.BubbleFraction, 12);
        // Nothing run: no bubble rather than a division by zero.
        Assert.Equal(0, SimulationResult.Measured(ScheduleKind.GPipe, [], 0).BubbleFraction);
        Assert.Equal(0, SimulationResult.Bubble([0.0, 0.0], 0));
    }
}
