using System.Diagnostics;
using Explorer.Core.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Pipeline;

/// <summary>
/// Times each unit of a live decoder on one micro-batch: the embedding, every layer, the final norm and LM head,
/// and the loss; forward and backward, medians of a few runs. The planner's "measured" cost basis.
/// </summary>
public static class UnitProfiler
{
    public static IReadOnlyList<PipelineUnit> Profile(Decoder.Decoder decoder, int microBatchSize, int sequenceLength, int repeats = 3)
    {
        if (microBatchSize < 1 || sequenceLength < 2 || repeats < 1)
            throw new ArgumentException($"Profile needs a micro-batch ≥ 1, a sequence ≥ 2 and repeats ≥ 1 (got {microBatchSize}, {sequenceLength}, {repeats}).");
        var spec = decoder.Spec;
        var analytic = CostModel.Units(spec, new CostSettings { SequenceLength = sequenceLength, MicroBatchSize = microBatchSize });
        var random = new Generator(5, CPU);
        using var tokens = torch.randint(0, spec.VocabularySize, [microBatchSize, sequenceLength + 1], generator: random, dtype: ScalarType.Int64);
        var inputs = tokens.narrow(1, 0, sequenceLength);
        var targets = tokens.narrow(1, 1, sequenceLength);
        var (cos, sin) = Decoder.Rotary.Tables(sequenceLength, spec.HeadDim, spec.RopeTheta, decoder.Device);
        var hidden = torch.randn([microBatchSize, sequenceLength, spec.HiddenSize], generator: random);
        decoder.train();
        try
        {
            (double Forward, double Backward) Time(Func<Tensor, Tensor> f, Func<Tensor>? input)
            {
                var forward = new double[repeats];
                var backward = new double[repeats];
                for (var r = 0; r <= repeats; r++) // the first run warms up
                {
                    using var scope = NewDisposeScope();
                    var x = input?.Invoke();
                    var watch = Stopwatch.StartNew();
                    var y = f(x!);
                    var fwd = watch.Elapsed.TotalMilliseconds;
                    watch.Restart();
                    if (y.requires_grad)
                        y.backward([torch.ones_like(y)]);
                    var bwd = watch.Elapsed.TotalMilliseconds;
                    if (r > 0)
                    {
                        forward[r - 1] = fwd;
                        backward[r - 1] = bwd;
                    }
                }
                Array.Sort(forward);
                Array.Sort(backward);
                return (forward[repeats / 2], backward[repeats / 2]);
            }

            var units = new List<PipelineUnit>();
            var embed = Time(_ => decoder.Embed(inputs), null);
            units.Add(analytic[0] with { Forward = embed.Forward, InputGradient = embed.Backward, WeightGradient = 0 });
            for (var l = 0; l < spec.Layers; l++)
            {
                var layer = decoder.Layers[l];
                var t = Time(x => layer.Forward(x, cos, sin), () => hidden.clone().requires_grad_(true));
                units.Add(analytic[l + 1] with { Forward = t.Forward, InputGradient = t.Backward, WeightGradient = 0 });
            }
            var head = Time(x => decoder.Head(x), () => hidden.clone().requires_grad_(true));
            units.Add(analytic[^2] with { Forward = head.Forward, InputGradient = head.Backward, WeightGradient = 0 });
            var logits = torch.randn([microBatchSize, sequenceLength, spec.VocabularySize], generator: random);
            var loss = Time(x => nn.functional.cross_entropy(x.reshape(-1, spec.VocabularySize), targets.reshape(-1)), () => logits.clone().requires_grad_(true));
            units.Add(analytic[^1] with { Forward = loss.Forward, InputGradient = loss.Backward, WeightGradient = 0 });
            decoder.zero_grad();
            return units;
        }
        finally
        {
            decoder.eval();
            cos.Dispose();
            sin.Dispose();
            hidden.Dispose();
        }
    }

    /// <summary>
    /// Unit costs for predicting a split run of <paramref name="stages"/> stage threads on this machine: each unit
    /// profiled with the intra-op threads a stage will have, then scaled so that the units of one micro-batch add up to
    /// what a one-stage run of the same code measures for its forward and its backward (the chained run carries
    /// per-operation costs the isolated timings miss: autograd over the whole chain, gradient accumulation, fresh
    /// activations). The hand-off between stage threads is measured as a one-stage run cannot: it is returned apart.
    /// </summary>
    public static (IReadOnlyList<PipelineUnit> Units, double HandOffMs) ProfileForRun(Decoder.Decoder decoder, int microBatchSize, int sequenceLength, int stages,
        Func<int, long[,]> batch)
    {
        var threads = PipelineRun.ThreadsPerStage(stages);
        var previous = IntraOpThreads.ForCurrentThread();
        try
        {
            IntraOpThreads.SetForCurrentThread(threads);
            var units = Profile(decoder, microBatchSize, sequenceLength);
            const int calibration = 8;
            decoder.train();
            PipelineRunResult run;
            try
            {
                // As many one-stage runs at once as stages will run at once, each pinned to its own cores and all on
                // this decoder (the real stages share its weights too): cores that share caches or memory bandwidth
                // slow the calibration as they will slow the stages.
                var concurrent = Math.Min(stages, Environment.ProcessorCount / threads);
                PipelineRunResult Step(int copy) => PipelineRun.TrainStep(decoder, batch(calibration * microBatchSize), [0], ScheduleKind.OneFOneB,
                    calibration, threads, firstCore: copy * threads);
                PipelineRunResult Together()
                {
                    var load = Enumerable.Range(1, Math.Max(0, concurrent - 1)).Select(copy => Task.Factory.StartNew(() => Step(copy), TaskCreationOptions.LongRunning)).ToArray();
                    var result = Step(0);
                    Task.WaitAll(load);
                    return result;
                }
                // Warm until the managed side of every operation is compiled at its final tier, as it is by the time
                // the split run starts; then three rounds, whose operations' medians are the calibration.
                for (var i = 0; i < 3; i++)
                    Together();
                var rounds = Enumerable.Range(0, 3).Select(_ => Together()).ToArray();
                run = new PipelineRunResult(0, rounds.SelectMany(r => r.Timeline).ToArray(), 0);
            }
            finally
            {
                decoder.zero_grad();
                decoder.eval();
            }
            double Median(OpKind kind)
            {
                var times = run.Timeline.Where(o => o.Kind == kind).Select(o => o.End - o.Start).Order().ToArray();
                return times[times.Length / 2];
            }
            var forwardScale = Median(OpKind.Forward) / Math.Max(1e-9, units.Sum(u => u.Forward));
            var backwardScale = Median(OpKind.Backward) / Math.Max(1e-9, units.Sum(u => u.InputGradient + u.WeightGradient));
            var scaled = units.Select(u => u with
            {
                Forward = u.Forward * forwardScale,
                InputGradient = u.InputGradient * backwardScale,
                WeightGradient = u.WeightGradient * backwardScale,
            }).ToArray();
            return (scaled, HandOffMs());
        }
        finally
        {
            if (previous is { } restore)
                IntraOpThreads.SetForCurrentThread(restore);
        }
    }

    /// <summary>Median time for a tensor to pass from one thread to another through the run's hand-off slot and back.</summary>
    private static double HandOffMs()
    {
        const int rounds = 200;
        using var ping = new System.Collections.Concurrent.BlockingCollection<Tensor>(1);
        using var pong = new System.Collections.Concurrent.BlockingCollection<Tensor>(1);
        using var payload = torch.zeros(1);
        var echo = new Thread(() =>
        {
            for (var i = 0; i < rounds; i++)
                pong.Add(ping.Take());
        }) { IsBackground = true };
        echo.Start();
        var times = new double[rounds];
        for (var i = 0; i < rounds; i++)
        {
            var watch = Stopwatch.StartNew();
            ping.Add(payload);
            pong.Take();
            times[i] = watch.Elapsed.TotalMilliseconds / 2;
        }
        echo.Join();
        Array.Sort(times);
        return times[rounds / 2];
    }
}
