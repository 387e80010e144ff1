namespace Explorer.Core.Pipeline;

/// <summary>The work of one operation on a device.</summary>
public enum OpKind
{
    Forward,
    Backward,
    InputGradient,
    WeightGradient,
}

/// <summary>One bar of the timeline: which device ran which op of which micro-batch (and model chunk), when.</summary>
public readonly record struct TimelineOp(int Device, int MicroBatch, int Chunk, OpKind Kind, double Start, double End);

/// <summary>Per-stage times of one micro-batch: forward, input-gradient and weight-gradient backward.</summary>
public readonly record struct StageTimes(double Forward, double InputGradient, double WeightGradient);

/// <summary>A simulated schedule.</summary>
public sealed record SimulationResult(
    ScheduleKind Schedule,
    int Devices,
    int MicroBatches,
    int VirtualStages,
    IReadOnlyList<TimelineOp> Timeline,
    double Makespan,
    double BubbleFraction,
    IReadOnlyList<double> BusyTime,
    IReadOnlyList<int> PeakInFlight,
    IReadOnlyList<long> PeakActivationBytes
)
{
    /// <summary>The share of the devices' time spent idle: 1 − Σ busy / (devices · makespan); 0 for an empty
    /// schedule.</summary>
    public static double Bubble(IReadOnlyList<double> busyTime, double makespan) =>
        makespan <= 0 || busyTime.Count == 0 ? 0 : 1 - busyTime.Sum() / (busyTime.Count * makespan);

    /// <summary>
    /// A measured timeline (a split run's) in the simulator's shape, to draw and compare like a simulation: its
    /// devices, micro-batches, busy time per device and bubble; no in-flight or activation accounting.
    /// </summary>
    public static SimulationResult Measured(ScheduleKind schedule, IReadOnlyList<TimelineOp> timeline, double makespan)
    {
        var devices = timeline.Count == 0 ? 0 : timeline.Max(o => o.Device) + 1;
        var busy = Enumerable
            .Range(0, devices)
            .Select(d => timeline.Where(o => o.Device == d).Sum(o => o.End - o.Start))
            .ToArray();
        var microBatches = timeline.Count == 0 ? 0 : timeline.Max(o => o.MicroBatch) + 1;
        return new SimulationResult(
            schedule,
            devices,
            microBatches,
            1,
            timeline,
            makespan,
            Bubble(busy, makespan),
            busy,
            new int[devices],
            new long[devices]
        );
    }
}

/// <summary>
/// Simulates pipeline schedules over p devices and m micro-batches: each device runs its operations in the
/// schedule's order (or, for ZB-H1, picks the next ready one by priority), each starting once the device is free
/// and its dependencies have finished (plus the point-to-point transfer time between devices). The fixed orders are
/// the engines' own: Megatron-LM's for 1F1B and interleaved 1F1B, torch.distributed.pipelining's for interleaved
/// zero bubble, ZBV and DualPipeV (pytorch 00722e6), DeepSeek's DualPipe (deepseek-ai/DualPipe 3da1bbe), whose paired
/// forward-and-backward runs as the forward then the backward, as torch runs OVERLAP_F_B.
/// </summary>
public static class ScheduleSimulator
{
    /// <summary>One operation; <paramref name="Paired"/> marks a forward run together with the backward after it
    /// (DualPipe's F&amp;B), which starts only once both can.</summary>
    private readonly record struct Op(int VirtualStage, int MicroBatch, OpKind Kind, bool Paired = false);

    /// <summary>
    /// <paramref name="stages"/> holds one entry per stage of the partition in pipeline order: p·v of them when
    /// interleaved (stage j on device j mod p), 2p for the V schedules (stages r and 2p − 1 − r on device r), p for
    /// DualPipe (both directions run them); <paramref name="activationBytes"/> likewise, optional.
    /// </summary>
    public static SimulationResult Simulate(
        ScheduleKind schedule,
        IReadOnlyList<StageTimes> stages,
        int microBatches,
        int virtualStages = 1,
        double transfer = 0,
        IReadOnlyList<long>? activationBytes = null
    )
    {
        if (microBatches < 1)
            throw new ArgumentException($"Micro-batches m = {microBatches}: use at least 1.");
        if (virtualStages < 1)
            throw new ArgumentException($"Virtual stages v = {virtualStages}: use at least 1.");
        if (!SchedulePlacement.UsesVirtualStages(schedule) && virtualStages != 1)
            throw new ArgumentException(
                $"Virtual stages v = {virtualStages} apply to the interleaved schedules only; use v = 1 "
                    + $"with {ScheduleNames.Name(schedule)}."
            );
        var chunks = SchedulePlacement.ChunksPerDevice(schedule, virtualStages);
        var perDevice = schedule == ScheduleKind.DualPipe ? 1 : chunks;
        if (stages.Count == 0 || stages.Count % perDevice != 0)
            throw new ArgumentException(
                $"{stages.Count} stage times cannot be dealt to devices with {perDevice} chunks each "
                    + $"({ScheduleNames.Name(schedule)})."
            );
        if (!(transfer >= 0) || double.IsInfinity(transfer))
            throw new ArgumentException($"Transfer time {transfer}: must be finite and not negative.");
        foreach (var (s, i) in stages.Select((s, i) => (s, i)))
            if (
                !(s.Forward >= 0 && s.InputGradient >= 0 && s.WeightGradient >= 0)
                || double.IsInfinity(s.Forward + s.InputGradient + s.WeightGradient)
            )
                throw new ArgumentException(
                    $"Stage {i} has times F = {s.Forward}, B = {s.InputGradient}, W = "
                        + $"{s.WeightGradient}; times must be finite and not negative."
                );
        int devices = stages.Count / perDevice,
            total = stages.Count;
        if (ScheduleNames.Rule(schedule, devices, microBatches) is { } rule)
            throw new ArgumentException(rule);
        var greedy = schedule == ScheduleKind.ZeroBubbleH1;
        // DualPipe's second half of the micro-batches runs the pipeline the other way round.
        bool Reverse(int microBatch) => schedule == ScheduleKind.DualPipe && microBatch >= microBatches / 2;
        int DeviceOf(int stage, int microBatch) =>
            SchedulePlacement.Device(schedule, stage, devices, Reverse(microBatch));

        // end[kind][virtual stage][micro-batch]; NaN until scheduled.
        var forwardEnd = Grid(total, microBatches);
        var backwardEnd = Grid(total, microBatches);
        var weightEnd = Grid(total, microBatches);
        double Duration(Op op)
        {
            var t = stages[op.VirtualStage];
            return op.Kind switch
            {
                OpKind.Forward => t.Forward,
                OpKind.Backward => t.InputGradient + t.WeightGradient,
                OpKind.InputGradient => t.InputGradient,
                _ => t.WeightGradient,
            };
        }
        double Ready(Op op)
        {
            int s = op.VirtualStage,
                mb = op.MicroBatch;
            switch (op.Kind)
            {
                case OpKind.Forward:
                    return s == 0 ? 0 : forwardEnd[s - 1][mb] + Hop(s - 1, s, mb);
                case OpKind.Backward:
                case OpKind.InputGradient:
                    return s == total - 1 ? forwardEnd[s][mb] : backwardEnd[s + 1][mb] + Hop(s + 1, s, mb);
                default:
                    return backwardEnd[s][mb];
            }
        }
        double Hop(int from, int to, int mb) => DeviceOf(from, mb) == DeviceOf(to, mb) ? 0 : transfer;

        var orders = greedy
            ? null
            : Enumerable
                .Range(0, devices)
                .Select(d => Order(schedule, d, devices, microBatches, virtualStages).ToArray())
                .ToArray();
        var position = new int[devices];
        // ZB-H1 state per device: next forward and backward micro-batch, and the W's waiting.
        var nextForward = new int[devices];
        var nextBackward = new int[devices];
        var pendingWeights = Enumerable.Range(0, devices).Select(_ => new Queue<int>()).ToArray();

        var free = new double[devices];
        var busy = new double[devices];
        var inFlight = new int[devices];
        var peak = new int[devices];
        var heldBytes = new long[devices];
        var peakBytes = new long[devices];
        var remaining = greedy ? total * microBatches * 3 : orders!.Sum(o => o.Length);
        var timeline = new List<TimelineOp>(remaining);

        // Each device's next operation and its earliest start, recomputed only when something it depends on
        // changed: its own last op, or a neighbour's (a forward feeds the next device, a backward the previous).
        var proposal = new Op[devices];
        var proposedStart = new double[devices];
        var stale = Enumerable.Repeat(true, devices).ToArray();
        double Propose(int d, out Op chosen)
        {
            chosen = default;
            var start = double.PositiveInfinity;
            if (!greedy)
            {
                if (position[d] == orders![d].Length)
                    return start;
                var op = orders[d][position[d]];
                var ready = Ready(op);
                if (op.Paired)
                    ready = Math.Max(ready, Ready(orders[d][position[d] + 1]));
                if (double.IsNaN(ready))
                    return start; // a dependency has not run yet
                chosen = op;
                return Math.Max(free[d], ready);
            }
            // ZB-H1: a backward (B) as soon as it is ready; else a forward while fewer than p − d are in flight;
            // else a deferred W. Whichever can start earliest, ties going in that order.
            if (nextBackward[d] < microBatches)
            {
                var op = new Op(d, nextBackward[d], OpKind.InputGradient);
                var r = Ready(op);
                if (!double.IsNaN(r) && Math.Max(free[d], r) < start)
                {
                    chosen = op;
                    start = Math.Max(free[d], r);
                }
            }
            if (nextForward[d] < microBatches && inFlight[d] < devices - d)
            {
                var op = new Op(d, nextForward[d], OpKind.Forward);
                var r = Ready(op);
                if (!double.IsNaN(r) && Math.Max(free[d], r) < start)
                {
                    chosen = op;
                    start = Math.Max(free[d], r);
                }
            }
            // A W can start at once (its B ran here), so it goes only where nothing else can start as early.
            if (pendingWeights[d].Count > 0 && free[d] < start)
            {
                chosen = new Op(d, pendingWeights[d].Peek(), OpKind.WeightGradient);
                start = free[d];
            }
            return start;
        }

        while (remaining > 0)
        {
            var bestDevice = -1;
            var bestStart = double.PositiveInfinity;
            for (var d = 0; d < devices; d++)
            {
                if (stale[d])
                {
                    proposedStart[d] = Propose(d, out proposal[d]);
                    stale[d] = false;
                }
                if (proposedStart[d] < bestStart)
                {
                    bestStart = proposedStart[d];
                    bestDevice = d;
                }
            }
            if (bestDevice < 0)
                throw new InvalidOperationException(
                    $"The {ScheduleNames.Name(schedule)} schedule deadlocked; this is a bug in the simulator."
                );
            var bestOp = proposal[bestDevice];
            stale[bestDevice] = stale[(bestDevice + 1) % devices] = stale[(bestDevice + devices - 1) % devices] = true;

            var end = bestStart + Duration(bestOp);
            var device = bestDevice;
            if (!greedy)
                position[device]++;
            var chunk = SchedulePlacement.Chunk(schedule, bestOp.VirtualStage, devices, Reverse(bestOp.MicroBatch));
            long bytes = activationBytes is null ? 0 : activationBytes[bestOp.VirtualStage];
            switch (bestOp.Kind)
            {
                case OpKind.Forward:
                    forwardEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
                    if (greedy)
                        nextForward[device]++;
                    inFlight[device]++;
                    heldBytes[device] += bytes;
                    break;
                case OpKind.Backward:
                    backwardEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
                    inFlight[device]--;
                    heldBytes[device] -= bytes;
                    break;
                case OpKind.InputGradient:
                    // As in Zero Bubble's memory model, what a micro-batch holds for its backward (M_B) goes with B;
                    // a waiting W keeps only its layer inputs and output gradients, counted as none here.
                    backwardEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
                    if (greedy)
                    {
                        nextBackward[device]++;
                        pendingWeights[device].Enqueue(bestOp.MicroBatch);
                    }
                    inFlight[device]--;
                    heldBytes[device] -= bytes;
                    break;
                default:
                    weightEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
                    if (greedy)
                        pendingWeights[device].Dequeue();
                    break;
            }
            peak[device] = Math.Max(peak[device], inFlight[device]);
            peakBytes[device] = Math.Max(peakBytes[device], heldBytes[device]);
            free[device] = end;
            busy[device] += end - bestStart;
            timeline.Add(new TimelineOp(device, bestOp.MicroBatch, chunk, bestOp.Kind, bestStart, end));
            remaining--;
        }

        var makespan = timeline.Count == 0 ? 0 : timeline.Max(o => o.End);
        return new SimulationResult(
            schedule,
            devices,
            microBatches,
            chunks,
            timeline,
            makespan,
            SimulationResult.Bubble(busy, makespan),
            busy,
            peak,
            peakBytes
        );
    }

    private static double[][] Grid(int rows, int columns)
    {
        var grid = new double[rows][];
        for (var i = 0; i < rows; i++)
        {
            grid[i] = new double[columns];
            Array.Fill(grid[i], double.NaN);
        }
        return grid;
    }

    /// <summary>
    /// The (micro-batch, operation) order in which device <paramref name="device"/> of <paramref name="devices"/> runs
    /// a GPipe or 1F1B step of <paramref name="microBatches"/>: what a real pipeline executes.
    /// </summary>
    public static IReadOnlyList<(int MicroBatch, OpKind Kind)> DeviceOrder(
        ScheduleKind schedule,
        int device,
        int devices,
        int microBatches
    )
    {
        if (schedule is not (ScheduleKind.GPipe or ScheduleKind.OneFOneB))
            throw new ArgumentException(
                $"Running a split for real supports gpipe and 1f1b; {ScheduleNames.Name(schedule)} is simulated only."
            );
        return Order(schedule, device, devices, microBatches, 1).Select(o => (o.MicroBatch, o.Kind)).ToArray();
    }

    /// <summary>The order in which device <paramref name="d"/> runs its operations under a fixed-order
    /// schedule.</summary>
    private static IEnumerable<Op> Order(ScheduleKind schedule, int d, int p, int m, int v)
    {
        switch (schedule)
        {
            case ScheduleKind.GPipe:
                for (var mb = 0; mb < m; mb++)
                    yield return new Op(d, mb, OpKind.Forward);
                for (var mb = 0; mb < m; mb++)
                    yield return new Op(d, mb, OpKind.Backward);
                break;
            case ScheduleKind.OneFOneB:
            {
                var warmup = Math.Min(p - d - 1, m);
                for (var mb = 0; mb < warmup; mb++)
                    yield return new Op(d, mb, OpKind.Forward);
                for (var i = 0; i < m - warmup; i++)
                {
                    yield return new Op(d, warmup + i, OpKind.Forward);
                    yield return new Op(d, i, OpKind.Backward);
                }
                for (var mb = m - warmup; mb < m; mb++)
                    yield return new Op(d, mb, OpKind.Backward);
                break;
            }
            case ScheduleKind.Interleaved1F1B:
            {
                // Megatron-LM: the k-th forward on a device is chunk (k / p) mod v of micro-batch (k / (p·v))·p + k mod
                // p; backwards go through the chunks in reverse.
                var totalOps = m * v;
                var warmup = Math.Min((p - d - 1) * 2 + (v - 1) * p, totalOps);
                Op Forward(int k) => new(((k / p) % v) * p + d, (k / (p * v)) * p + k % p, OpKind.Forward);
                Op Backward(int k) => new((v - 1 - (k / p) % v) * p + d, (k / (p * v)) * p + k % p, OpKind.Backward);
                for (var k = 0; k < warmup; k++)
                    yield return Forward(k);
                for (var i = 0; i < totalOps - warmup; i++)
                {
                    yield return Forward(warmup + i);
                    yield return Backward(i);
                }
                for (var k = totalOps - warmup; k < totalOps; k++)
                    yield return Backward(k);
                break;
            }
            case ScheduleKind.InterleavedZeroBubble:
                foreach (var op in InterleavedZeroBubbleOrder(d, p, m, v))
                    yield return op;
                break;
            case ScheduleKind.ZeroBubbleV:
                foreach (var op in ZeroBubbleVOrder(d, p, m))
                    yield return op;
                break;
            case ScheduleKind.DualPipeV:
                // Phase 0 is the V's way down (stage d), phase 1 its way back up (stage 2p − 1 − d).
                foreach (var op in DualOrder(d, p, m, (phase, k) => (phase == 0 ? d : 2 * p - 1 - d, k)))
                    yield return op;
                break;
            case ScheduleKind.DualPipe:
            {
                // Device d runs DualPipeV's order for rank min(d, p − 1 − d) of p/2 over m/2 micro-batches. The first
                // half of the devices calls the direction that enters at device 0 phase 0, the second half phase 1;
                // that direction runs stage d here, the other (micro-batches m/2 and up) stage p − 1 − d.
                var half = Math.Min(d, p - 1 - d);
                var secondHalf = d >= p / 2;
                foreach (
                    var op in DualOrder(half, p / 2, m / 2, (phase, k) =>
                        (phase == 0) != secondHalf ? (d, k) : (p - 1 - d, m / 2 + k)
                    )
                )
                    yield return op;
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "Not a fixed-order schedule.");
        }
    }

    /// <summary>
    /// torch's ScheduleInterleavedZeroBubble (ZB1P over v chunks): interleaved 1F1B's order with warm-up
    /// (v − 1)·r + p − d − 1, r the round size, each backward split into B, and the W of each backward after the
    /// first d deferred to follow a later B in order; the rest run at the end.
    /// </summary>
    private static IEnumerable<Op> InterleavedZeroBubbleOrder(int d, int p, int m, int v)
    {
        var round = ScheduleNames.RoundSize(p, m);
        var operations = v * m;
        var warmup = Math.Min((v - 1) * round + p - 1 - d, operations);
        int ForwardStage(int step) => (step / round % v) * p + d;
        int BackwardStage(int step) => (v - 1 - (step - warmup) / round % v) * p + d;
        var forwards = new int[p * v];
        var backwards = new int[p * v];
        var weights = new int[p * v];
        var backwardSteps = new List<int>(operations);
        var weightCount = 0;
        for (var step = 0; step < operations + warmup; step++)
        {
            if (step < operations)
            {
                var f = ForwardStage(step);
                yield return new Op(f, forwards[f]++, OpKind.Forward);
                if (step < warmup)
                    continue;
            }
            var b = BackwardStage(step);
            yield return new Op(b, backwards[b]++, OpKind.InputGradient);
            backwardSteps.Add(step);
            if (step - warmup >= d)
            {
                var w = BackwardStage(backwardSteps[weightCount++]);
                yield return new Op(w, weights[w]++, OpKind.WeightGradient);
            }
        }
        while (weightCount < backwardSteps.Count)
        {
            var w = BackwardStage(backwardSteps[weightCount++]);
            yield return new Op(w, weights[w]++, OpKind.WeightGradient);
        }
    }

    /// <summary>
    /// torch's ScheduleZBVZeroBubble on device d of p: 2(p − d) − 1 forwards of chunk 0, d pairs of chunk-1 and
    /// chunk-0 forwards, p − d rounds of chunk 1's F B W, then F B W of chunk 0 and of chunk 1 in turn, and a
    /// cool-down of B's whose W's follow. The order is built for max(2p − 1, m) micro-batches and the ones past m
    /// dropped, as torch does.
    /// </summary>
    private static IEnumerable<Op> ZeroBubbleVOrder(int d, int p, int m)
    {
        var n = Math.Max(2 * p - 1, m);
        int chunk0 = d,
            chunk1 = 2 * p - 1 - d;
        int f0 = 0,
            f1 = 0,
            b0 = 0,
            b1 = 0;
        var order = new List<Op>(6 * n);
        for (var i = 0; i < 2 * (p - d) - 1; i++)
            order.Add(new Op(chunk0, f0++, OpKind.Forward));
        for (var i = 0; i < d; i++)
        {
            order.Add(new Op(chunk1, f1++, OpKind.Forward));
            order.Add(new Op(chunk0, f0++, OpKind.Forward));
        }
        for (var i = 0; i < p - d; i++)
        {
            order.Add(new Op(chunk1, f1++, OpKind.Forward));
            order.Add(new Op(chunk1, b1, OpKind.InputGradient));
            order.Add(new Op(chunk1, b1++, OpKind.WeightGradient));
        }
        while (f1 < f0 || f0 < n)
        {
            if (f0 < n)
                order.Add(new Op(chunk0, f0++, OpKind.Forward));
            order.Add(new Op(chunk0, b0, OpKind.InputGradient));
            order.Add(new Op(chunk0, b0++, OpKind.WeightGradient));
            order.Add(new Op(chunk1, f1++, OpKind.Forward));
            order.Add(new Op(chunk1, b1, OpKind.InputGradient));
            order.Add(new Op(chunk1, b1++, OpKind.WeightGradient));
        }
        int w0 = b0,
            w1 = b1;
        for (var i = 0; i < d; i++)
        {
            order.Add(new Op(chunk0, b0++, OpKind.InputGradient));
            order.Add(new Op(chunk1, b1++, OpKind.InputGradient));
        }
        for (var i = 0; i < p - d; i++)
        {
            order.Add(new Op(chunk0, b0++, OpKind.InputGradient));
            order.Add(new Op(chunk0, w0++, OpKind.WeightGradient));
        }
        while (w1 < b1)
            order.Add(new Op(chunk1, w1++, OpKind.WeightGradient));
        while (w0 < b0)
            order.Add(new Op(chunk0, w0++, OpKind.WeightGradient));
        return order.Where(op => op.MicroBatch < m);
    }

    /// <summary>
    /// DualPipe's eight steps on rank <paramref name="rank"/> of <paramref name="ranks"/> over
    /// <paramref name="chunks"/> micro-batches per phase (DualPipeV's step; DualPipe runs it on each half of its
    /// devices): forwards of phase 0, paired forwards, B-W-F of phase 1, the main loop of paired forward-backwards,
    /// then the backwards, the second half of them deferring their W's, which run last in order.
    /// <paramref name="place"/> maps (phase, the phase's k-th micro-batch) to (stage, micro-batch).
    /// </summary>
    private static IEnumerable<Op> DualOrder(
        int rank,
        int ranks,
        int chunks,
        Func<int, int, (int Stage, int MicroBatch)> place
    )
    {
        var forwards = new int[2];
        var backwards = new int[2];
        var deferred = new Queue<Op>();
        var order = new List<Op>(6 * chunks);
        void Forward(int phase, bool paired = false)
        {
            var (stage, mb) = place(phase, forwards[phase]++);
            order.Add(new Op(stage, mb, OpKind.Forward, paired));
        }
        void Backward(int phase, bool deferWeights)
        {
            var (stage, mb) = place(phase, backwards[phase]++);
            if (!deferWeights)
            {
                order.Add(new Op(stage, mb, OpKind.Backward));
                return;
            }
            order.Add(new Op(stage, mb, OpKind.InputGradient));
            deferred.Enqueue(new Op(stage, mb, OpKind.WeightGradient));
        }
        void Weight()
        {
            if (deferred.Count > 0)
                order.Add(deferred.Dequeue());
        }

        for (var i = 0; i < (ranks - rank - 1) * 2; i++)
            Forward(0);
        for (var i = 0; i < rank + 1; i++)
        {
            Forward(0);
            Forward(1);
        }
        for (var i = 0; i < ranks - rank - 1; i++)
        {
            Backward(1, deferWeights: true);
            Weight();
            Forward(1);
        }
        for (var i = 0; i < chunks - ranks * 2 + rank + 1; i++)
        {
            // The last rank runs its first pair apart: its forward feeds its own backward at the V's turn.
            Forward(0, paired: i > 0 || rank != ranks - 1);
            Backward(1, deferWeights: false);
            Forward(1, paired: true);
            Backward(0, deferWeights: false);
        }
        for (var i = 0; i < ranks - rank - 1; i++)
        {
            Backward(1, deferWeights: false);
            Forward(1, paired: true);
            Backward(0, deferWeights: false);
        }
        var defer = false;
        var steps = rank + 1;
        for (var i = 0; i < steps; i++)
        {
            if (i == steps / 2 && rank % 2 == 1)
                defer = true;
            Backward(1, defer);
            if (i == steps / 2 && rank % 2 == 0)
                defer = true;
            Backward(0, defer);
        }
        for (var i = 0; i < ranks - rank - 1; i++)
        {
            Weight();
            Backward(0, deferWeights: true);
        }
        for (var i = 0; i < rank + 1; i++)
            Weight();
        return order;
    }
}
