namespace Explorer.Core.Pipeline;

/// <summary>The work of one operation on a device.</summary>
public enum OpKind { Forward, Backward, InputGradient, WeightGradient }

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
    IReadOnlyList<long> PeakActivationBytes)
{
    /// <summary>The share of the devices' time spent idle: 1 − Σ busy / (devices · makespan); 0 for an empty schedule.</summary>
    public static double Bubble(IReadOnlyList<double> busyTime, double makespan) =>
        makespan <= 0 || busyTime.Count == 0 ? 0 : 1 - busyTime.Sum() / (busyTime.Count * makespan);

    /// <summary>
    /// A measured timeline (a split run's) in the simulator's shape, to draw and compare like a simulation: its
    /// devices, micro-batches, busy time per device and bubble; no in-flight or activation accounting.
    /// </summary>
    public static SimulationResult Measured(ScheduleKind schedule, IReadOnlyList<TimelineOp> timeline, double makespan)
    {
        var devices = timeline.Count == 0 ? 0 : timeline.Max(o => o.Device) + 1;
        var busy = Enumerable.Range(0, devices).Select(d => timeline.Where(o => o.Device == d).Sum(o => o.End - o.Start)).ToArray();
        var microBatches = timeline.Count == 0 ? 0 : timeline.Max(o => o.MicroBatch) + 1;
        return new SimulationResult(schedule, devices, microBatches, 1, timeline, makespan, Bubble(busy, makespan), busy, new int[devices], new long[devices]);
    }
}

/// <summary>
/// Simulates pipeline schedules over p devices and m micro-batches: each device runs its operations in the
/// schedule's order (or, for ZB-H1, picks the next ready one by priority), each starting once the device is free
/// and its dependencies have finished (plus the point-to-point transfer time between devices).
/// </summary>
public static class ScheduleSimulator
{
    private readonly record struct Op(int VirtualStage, int MicroBatch, OpKind Kind);

    /// <summary>
    /// <paramref name="stages"/> holds one entry per virtual stage (p·v of them for interleaved, in pipeline
    /// order: virtual stage j runs on device j mod p); <paramref name="activationBytes"/> likewise, optional.
    /// </summary>
    public static SimulationResult Simulate(ScheduleKind schedule, IReadOnlyList<StageTimes> stages, int microBatches,
        int virtualStages = 1, double transfer = 0, IReadOnlyList<long>? activationBytes = null)
    {
        if (microBatches < 1)
            throw new ArgumentException($"Micro-batches m = {microBatches}: use at least 1.");
        if (virtualStages < 1)
            throw new ArgumentException($"Virtual stages v = {virtualStages}: use at least 1.");
        if (schedule != ScheduleKind.Interleaved1F1B && virtualStages != 1)
            throw new ArgumentException($"Virtual stages v = {virtualStages} apply to the interleaved schedule only; use v = 1 with {ScheduleNames.Name(schedule)}.");
        if (stages.Count == 0 || stages.Count % virtualStages != 0)
            throw new ArgumentException($"{stages.Count} stage times cannot be dealt to devices with v = {virtualStages} chunks each.");
        if (!(transfer >= 0) || double.IsInfinity(transfer))
            throw new ArgumentException($"Transfer time {transfer}: must be finite and not negative.");
        foreach (var (s, i) in stages.Select((s, i) => (s, i)))
            if (!(s.Forward >= 0 && s.InputGradient >= 0 && s.WeightGradient >= 0) || double.IsInfinity(s.Forward + s.InputGradient + s.WeightGradient))
                throw new ArgumentException($"Stage {i} has times F = {s.Forward}, B = {s.InputGradient}, W = {s.WeightGradient}; times must be finite and not negative.");
        int devices = stages.Count / virtualStages, total = stages.Count;
        if (schedule == ScheduleKind.Interleaved1F1B && microBatches % devices != 0)
            throw new ArgumentException($"Interleaved 1F1B needs the micro-batches (m = {microBatches}) to be a multiple of the devices (p = {devices}), as Megatron-LM requires.");
        var split = schedule == ScheduleKind.ZeroBubbleH1;

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
            int s = op.VirtualStage, mb = op.MicroBatch;
            switch (op.Kind)
            {
                case OpKind.Forward:
                    return s == 0 ? 0 : forwardEnd[s - 1][mb] + Hop(s - 1, s);
                case OpKind.Backward:
                case OpKind.InputGradient:
                    return s == total - 1 ? forwardEnd[s][mb] : backwardEnd[s + 1][mb] + Hop(s + 1, s);
                default:
                    return backwardEnd[s][mb];
            }
        }
        double Hop(int from, int to) => from % devices == to % devices ? 0 : transfer;

        var queues = split ? null : Enumerable.Range(0, devices).Select(d => new Queue<Op>(Order(schedule, d, devices, microBatches, virtualStages))).ToArray();
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
        var timeline = new List<TimelineOp>(total * microBatches * (split ? 3 : 2));
        var remaining = total * microBatches * (split ? 3 : 2);

        // Each device's next operation and its earliest start, recomputed only when something it depends on
        // changed: its own last op, or a neighbour's (a forward feeds the next device, a backward the previous).
        var proposal = new Op[devices];
        var proposedStart = new double[devices];
        var stale = Enumerable.Repeat(true, devices).ToArray();
        double Propose(int d, out Op chosen)
        {
            chosen = default;
            var start = double.PositiveInfinity;
            if (!split)
            {
                if (queues![d].Count == 0) return start;
                var op = queues[d].Peek();
                var ready = Ready(op);
                if (double.IsNaN(ready)) return start; // a dependency has not run yet
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
                throw new InvalidOperationException($"The {ScheduleNames.Name(schedule)} schedule deadlocked; this is a bug in the simulator.");
            var bestOp = proposal[bestDevice];
            stale[bestDevice] = stale[(bestDevice + 1) % devices] = stale[(bestDevice + devices - 1) % devices] = true;

            var end = bestStart + Duration(bestOp);
            var device = bestDevice;
            if (!split) queues![device].Dequeue();
            var chunk = bestOp.VirtualStage / devices;
            long bytes = activationBytes is null ? 0 : activationBytes[bestOp.VirtualStage];
            switch (bestOp.Kind)
            {
                case OpKind.Forward:
                    forwardEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
                    if (split) nextForward[device]++;
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
                    nextBackward[device]++;
                    pendingWeights[device].Enqueue(bestOp.MicroBatch);
                    inFlight[device]--;
                    heldBytes[device] -= bytes;
                    break;
                default:
                    weightEnd[bestOp.VirtualStage][bestOp.MicroBatch] = end;
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
        return new SimulationResult(schedule, devices, microBatches, virtualStages, timeline, makespan, SimulationResult.Bubble(busy, makespan), busy, peak, peakBytes);
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
    /// The (micro-batch, operation) order in which device <paramref name="device"/> of <paramref name="devices"/> runs a
    /// GPipe or 1F1B step of <paramref name="microBatches"/>: what a real pipeline executes.
    /// </summary>
    public static IReadOnlyList<(int MicroBatch, OpKind Kind)> DeviceOrder(ScheduleKind schedule, int device, int devices, int microBatches)
    {
        if (schedule is not (ScheduleKind.GPipe or ScheduleKind.OneFOneB))
            throw new ArgumentException($"Running a split for real supports gpipe and 1f1b; {ScheduleNames.Name(schedule)} is simulated only.");
        return Order(schedule, device, devices, microBatches, 1).Select(o => (o.MicroBatch, o.Kind)).ToArray();
    }

    /// <summary>The order in which device <paramref name="d"/> runs its operations under a fixed-order schedule.</summary>
    private static IEnumerable<Op> Order(ScheduleKind schedule, int d, int p, int m, int v)
    {
        switch (schedule)
        {
            case ScheduleKind.GPipe:
                for (var mb = 0; mb < m; mb++) yield return new Op(d, mb, OpKind.Forward);
                for (var mb = 0; mb < m; mb++) yield return new Op(d, mb, OpKind.Backward);
                break;
            case ScheduleKind.OneFOneB:
            {
                var warmup = Math.Min(p - d - 1, m);
                for (var mb = 0; mb < warmup; mb++) yield return new Op(d, mb, OpKind.Forward);
                for (var i = 0; i < m - warmup; i++)
                {
                    yield return new Op(d, warmup + i, OpKind.Forward);
                    yield return new Op(d, i, OpKind.Backward);
                }
                for (var mb = m - warmup; mb < m; mb++) yield return new Op(d, mb, OpKind.Backward);
                break;
            }
            case ScheduleKind.Interleaved1F1B:
            {
                // Megatron-LM: the k-th forward on a device is chunk (k / p) mod v of micro-batch (k / (p·v))·p + k mod p;
                // backwards go through the chunks in reverse.
                var totalOps = m * v;
                var warmup = Math.Min((p - d - 1) * 2 + (v - 1) * p, totalOps);
                Op Forward(int k) => new(((k / p) % v) * p + d, (k / (p * v)) * p + k % p, OpKind.Forward);
                Op Backward(int k) => new((v - 1 - (k / p) % v) * p + d, (k / (p * v)) * p + k % p, OpKind.Backward);
                for (var k = 0; k < warmup; k++) yield return Forward(k);
                for (var i = 0; i < totalOps - warmup; i++)
                {
                    yield return Forward(warmup + i);
                    yield return Backward(i);
                }
                for (var k = totalOps - warmup; k < totalOps; k++) yield return Backward(k);
                break;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "Not a fixed-order schedule.");
        }
    }
}
