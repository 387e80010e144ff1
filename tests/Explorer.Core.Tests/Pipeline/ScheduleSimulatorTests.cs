using Explorer.Core.Pipeline;

namespace Explorer.Core.Tests.Pipeline;

public class ScheduleSimulatorTests
{
    private static StageTimes[] Equal(int p, double f, double b, double w) =>
        Enumerable.Repeat(new StageTimes(f, b, w), p).ToArray();

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
    public void ZeroBubbleH1WithUnequalTimesBeats1F1BAndRespectsTheLowerBound(
        int p,
        int m,
        double f,
        double b,
        double w
    )
    {
        // The closed form describes the paper's handcrafted schedule; with unequal F, B, W the simulator's W placement
        // (fill whatever gap is left) lands near it, never under the bound: the last device waits (p − 1)·T_F for its
        // first input and then has m(F + B + W) of work; and it always beats 1F1B.
        var zb = ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleH1, Equal(p, f, b, w), m).Makespan;
        var oneF = ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(p, f, b, w), m).Makespan;
        Assert.True(zb >= m * (f + b + w) + (p - 1) * f - 1e-9);
        Assert.True(zb < oneF);
    }

    [Theory]
    [InlineData(ScheduleKind.DualPipeV, 4, 16, 1, 1)]
    [InlineData(ScheduleKind.DualPipeV, 8, 32, 1, 1)]
    [InlineData(ScheduleKind.DualPipeV, 8, 16, 1, 0.5)]
    [InlineData(ScheduleKind.DualPipeV, 6, 20, 2, 0)]
    [InlineData(ScheduleKind.DualPipe, 4, 16, 1, 1)]
    [InlineData(ScheduleKind.DualPipe, 8, 20, 1, 1)]
    [InlineData(ScheduleKind.DualPipe, 8, 32, 1, 0.5)]
    [InlineData(ScheduleKind.DualPipe, 6, 12, 2, 0)]
    public void DualPipeMatchesDeepSeeksBubbleAndMemory(
        ScheduleKind schedule,
        int p,
        int m,
        double forward,
        double weight
    )
    {
        // DeepSeek's table (deepseek-ai/DualPipe README): bubble (PP/2 − 1)(F&B + B − 3W) and PP + 1 activations per
        // device, PP the stages (2p for the V, p for DualPipe), B the full backward, F&B a paired forward and
        // backward. Dense layers have nothing to overlap, so F&B = F + B. Here the input gradient equals F.
        double inputGradient = forward,
            fullBackward = inputGradient + weight,
            paired = forward + fullBackward;
        var stages = SchedulePlacement.Stages(schedule, p, 1);
        var result = ScheduleSimulator.Simulate(schedule, Equal(stages, forward, inputGradient, weight), m);
        var bubble = (stages / 2 - 1) * (paired + fullBackward - 3 * weight);
        // Every device runs each micro-batch once through each of its two chunks (DualPipe: half the micro-batches
        // through each direction's stage).
        var busy = (schedule == ScheduleKind.DualPipe ? m : 2 * m) * (forward + fullBackward);
        Assert.All(result.BusyTime, b => Assert.Equal(busy, b, 9));
        Assert.Equal(busy + bubble, result.Makespan, 9);
        Assert.Equal(stages + 1, result.PeakInFlight.Max());
    }

    [Theory]
    [InlineData(4, 8)]
    [InlineData(8, 32)]
    [InlineData(6, 24)]
    public void ZeroBubbleVIdlesOnlyWhileThePipelineFills(int p, int m)
    {
        // With F = B = W the only idle time left is the last device's wait for its first input, (p − 1)·F (stages
        // 0..p − 2 run first); without W to fill with, the V is 1F1B over 2p chunks: (p − 1)(F + B) idle.
        var zbv = ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleV, Equal(2 * p, 1, 1, 1), m);
        Assert.Equal(2 * m * 3 + (p - 1) * 1.0, zbv.Makespan, 9);
        var noWeights = ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleV, Equal(2 * p, 1, 1, 0), m);
        Assert.Equal(2 * m * 2 + (p - 1) * 2.0, noWeights.Makespan, 9);
        // Stage j of the V holds min(2p − j, m) micro-batches: device r's two chunks peak together at 2p chunk
        // activations, 1F1B's p device shares.
        Assert.All(zbv.PeakInFlight, peak => Assert.Equal(2 * p, peak));
    }

    [Theory]
    [InlineData(4, 8, 2, 1)]
    [InlineData(4, 8, 2, 0.5)]
    [InlineData(4, 16, 3, 0)]
    [InlineData(8, 16, 1, 0.5)]
    [InlineData(8, 16, 1, 1)]
    public void InterleavedZeroBubbleIdlesZbH1sBubbleOverV(int p, int m, int v, double weight)
    {
        // ZB1P (arXiv 2401.10241): (p − 1)(F + B − W) per device, in chunk times (W ≤ F here); with v = 1 and
        // F = B = W, the same makespan as the ZB-H1 simulation (whose greedy W placement does better when W < F).
        double f = 1,
            b = 1;
        var result = ScheduleSimulator.Simulate(ScheduleKind.InterleavedZeroBubble, Equal(p * v, f, b, weight), m, v);
        Assert.Equal(v * m * (f + b + weight) + (p - 1) * (f + b - weight), result.Makespan, 9);
        // Device i warms up (v − 1)·p + p − i − 1 forwards and runs one more before its first B.
        Assert.Equal(Enumerable.Range(0, p).Select(i => (v - 1) * p + p - i), result.PeakInFlight);
        if (v == 1 && weight == f)
            Assert.Equal(
                ScheduleSimulator.Simulate(ScheduleKind.ZeroBubbleH1, Equal(p, f, b, weight), m).Makespan,
                result.Makespan,
                9
            );
    }

    [Theory]
    [InlineData(ScheduleKind.DualPipe, 3, 12, "even number of devices")]
    [InlineData(ScheduleKind.DualPipe, 4, 9, "even number of micro-batches")]
    [InlineData(ScheduleKind.DualPipe, 4, 6, "at least 2p = 8")]
    [InlineData(ScheduleKind.DualPipeV, 4, 7, "at least 2p = 8")]
    [InlineData(ScheduleKind.InterleavedZeroBubble, 2, 7, "rounds of max(1, ⌊m/p⌋) = 3")]
    public void SchedulesRefuseWhatTheirEnginesRefuse(ScheduleKind schedule, int p, int m, string expected)
    {
        var stages = SchedulePlacement.Stages(schedule, p, 2);
        var v = SchedulePlacement.UsesVirtualStages(schedule) ? 2 : 1;
        var error = Assert.Throws<ArgumentException>(() =>
            ScheduleSimulator.Simulate(schedule, Equal(stages, 1, 1, 1), m, v)
        );
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void OneFOneBHoldsPMinusIMicroBatchesAndGPipeHoldsAll()
    {
        var oneF = ScheduleSimulator.Simulate(
            ScheduleKind.OneFOneB,
            Equal(4, 1, 1, 1),
            10,
            activationBytes: [5, 5, 5, 5]
        );
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
    [InlineData(ScheduleKind.InterleavedZeroBubble, 2)]
    [InlineData(ScheduleKind.ZeroBubbleV, 1)]
    [InlineData(ScheduleKind.DualPipeV, 1)]
    [InlineData(ScheduleKind.DualPipe, 1)]
    public void TimelinesRespectDependenciesOnUnevenStages(ScheduleKind schedule, int v)
    {
        var random = new Random(5);
        int p = 4,
            m = 8;
        var total = SchedulePlacement.Stages(schedule, p, v);
        var times = Enumerable
            .Range(0, total)
            .Select(_ => new StageTimes(
                random.NextDouble() + 0.1,
                random.NextDouble() + 0.1,
                random.NextDouble() + 0.1
            ))
            .ToArray();
        var result = ScheduleSimulator.Simulate(schedule, times, m, v, transfer: 0.05);
        foreach (var device in result.Timeline.GroupBy(o => o.Device))
        {
            var ops = device.OrderBy(o => o.Start).ToArray();
            for (var i = 1; i < ops.Length; i++)
                Assert.True(ops[i].Start >= ops[i - 1].End - 1e-12, "ops overlap on a device");
        }
        // The stage an op ran, from where it ran: the inverse of the schedule's placement.
        int Stage(TimelineOp o) =>
            schedule switch
            {
                ScheduleKind.ZeroBubbleV or ScheduleKind.DualPipeV => o.Chunk == 0 ? o.Device : 2 * p - 1 - o.Device,
                ScheduleKind.DualPipe => o.Chunk == 0 ? o.Device : p - 1 - o.Device,
                _ => o.Chunk * p + o.Device,
            };
        foreach (var op in result.Timeline)
            Assert.Equal(
                op.Device,
                SchedulePlacement.Device(
                    schedule,
                    Stage(op),
                    p,
                    reverse: op.Chunk == 1 && schedule == ScheduleKind.DualPipe
                )
            );
        var byKey = result.Timeline.ToDictionary(o => (Stage(o), o.MicroBatch, o.Kind));
        // Every stage runs every micro-batch forward and backward once: whole, or as B then W.
        Assert.Equal(total * m, result.Timeline.Count(o => o.Kind == OpKind.Forward));
        Assert.Equal(total * m, result.Timeline.Count(o => o.Kind is OpKind.Backward or OpKind.InputGradient));
        Assert.Equal(
            result.Timeline.Count(o => o.Kind == OpKind.InputGradient),
            result.Timeline.Count(o => o.Kind == OpKind.WeightGradient)
        );
        double BackwardEnd(int s, int mb) =>
            (
                byKey.TryGetValue((s, mb, OpKind.Backward), out var whole)
                    ? whole
                    : byKey[(s, mb, OpKind.InputGradient)]
            ).End;
        foreach (var op in result.Timeline)
        {
            var s = Stage(op);
            if (op.Kind == OpKind.Forward && s > 0)
                Assert.True(op.Start >= byKey[(s - 1, op.MicroBatch, OpKind.Forward)].End - 1e-12);
            if (op.Kind is OpKind.Backward or OpKind.InputGradient)
                Assert.True(
                    op.Start
                        >= (
                            s == total - 1
                                ? byKey[(s, op.MicroBatch, OpKind.Forward)].End
                                : BackwardEnd(s + 1, op.MicroBatch)
                        ) - 1e-12
                );
            if (op.Kind == OpKind.WeightGradient)
                Assert.True(op.Start >= byKey[(s, op.MicroBatch, OpKind.InputGradient)].End - 1e-12);
        }
    }

    [Fact]
    public void BadInputsAreNamed()
    {
        Assert.Contains(
            "m = 0",
            Assert
                .Throws<ArgumentException>(() =>
                    ScheduleSimulator.Simulate(ScheduleKind.OneFOneB, Equal(2, 1, 1, 1), 0)
                )
                .Message
        );
        Assert.Contains(
            "multiple of the devices",
            Assert
                .Throws<ArgumentException>(() =>
                    ScheduleSimulator.Simulate(ScheduleKind.Interleaved1F1B, Equal(8, 1, 1, 1), 5, 2)
                )
                .Message
        );
        Assert.Contains(
            "F = -1",
            Assert
                .Throws<ArgumentException>(() => ScheduleSimulator.Simulate(ScheduleKind.GPipe, Equal(2, -1, 1, 1), 2))
                .Message
        );
        Assert.Contains(
            "interleaved schedules only",
            Assert
                .Throws<ArgumentException>(() =>
                    ScheduleSimulator.Simulate(ScheduleKind.GPipe, Equal(4, 1, 1, 1), 2, 2)
                )
                .Message
        );
        Assert.Contains(
            "Unknown schedule 'pipedream'",
            Assert.Throws<ArgumentException>(() => ScheduleNames.Parse("pipedream")).Message
        );
    }

    [Fact]
    public void AMeasuredTimelineGetsItsBusyTimeAndBubble()
    {
        // Device 0 busy 0–1 and 2–4 (3 ms), device 1 busy 1–2 (1 ms), over 4 ms: 1 − 4 / (2 · 4) = 0.5.
        TimelineOp[] ops =
        [
            new(0, 0, 0, OpKind.Forward, 0, 1),
            new(1, 0, 0, OpKind.Forward, 1, 1.5),
            new(1, 0, 0, OpKind.Backward, 1.5, 2),
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
