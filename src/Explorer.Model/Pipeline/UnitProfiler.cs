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
    public static IReadOnlyList<PipelineUnit> Profile(
        Decoder.Decoder decoder,
        int microBatchSize,
        int sequenceLength,
        int repeats = 3
    )
    {
        if (microBatchSize < 1 || sequenceLength < 2 || repeats < 1)
            throw new ArgumentException(
                "Profile needs a micro-batch ≥ 1, a sequence ≥ 2 and repeats ≥ 1 (got "
                    + $"{microBatchSize}, {sequenceLength}, {repeats})."
            );
        var spec = decoder.Spec;
        var analytic = CostModel.Units(
            spec,
            new CostSettings { SequenceLength = sequenceLength, MicroBatchSize = microBatchSize }
        );
        var random = new Generator(5, CPU);
        using var tokens = torch.randint(
            0,
            spec.VocabularySize,
            [microBatchSize, sequenceLength + 1],
            generator: random,
            dtype: ScalarType.Int64
        );
        var inputs = tokens.narrow(1, 0, sequenceLength);
        var targets = tokens.narrow(1, 1, sequenceLength);
        var (cos, sin) = Decoder.Rotary.Tables(spec, sequenceLength, decoder.Device);
        using var window = decoder.WindowMask(sequenceLength);
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
                var mask = decoder.MaskFor(l, window);
                var t = Time(x => layer.Forward(x, cos, sin, mask), () => hidden.clone().requires_grad_(true));
                units.Add(analytic[l + 1] with { Forward = t.Forward, InputGradient = t.Backward, WeightGradient = 0 });
            }
            var head = Time(x => decoder.Head(x), () => hidden.clone().requires_grad_(true));
            units.Add(analytic[^2] with { Forward = head.Forward, InputGradient = head.Backward, WeightGradient = 0 });
            var logits = torch.randn([microBatchSize, sequenceLength, spec.VocabularySize], generator: random);
            var loss = Time(
                x => nn.functional.cross_entropy(x.reshape(-1, spec.VocabularySize), targets.reshape(-1)),
                () => logits.clone().requires_grad_(true)
            );
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
    /// Unit costs for predicting a split run of <paramref name="stages"/> stage threads on this machine, measured
    /// inside the run's own code: one-stage runs of the whole model (the same unit functions, autograd over the whole
    /// chain, gradient accumulation, fresh activations, as the split run has) with a timestamp between every two units,
    /// forward and backward. Each runs with the intra-op threads a stage will have, and as many run at once, each
    /// pinned to its own cores, as stages will: cores that share caches and memory bandwidth slow the calibration as
    /// they will slow the stages. The hand-off between stage threads, which a one-stage run does not have, is measured
    /// apart.
    /// </summary>
    public static (IReadOnlyList<PipelineUnit> Units, double HandOffMs) ProfileForRun(
        Decoder.Decoder decoder,
        int microBatchSize,
        int sequenceLength,
        int stages,
        ScheduleKind schedule,
        Func<int, long[,]> batch
    )
    {
        if (microBatchSize < 1 || sequenceLength < 2 || stages < 1)
            throw new ArgumentException(
                "ProfileForRun needs a micro-batch ≥ 1, a sequence ≥ 2 and stages ≥ 1 (got "
                    + $"{microBatchSize}, {sequenceLength}, {stages})."
            );
        const int microBatches = 8;
        var threads = PipelineRun.ThreadsPerStage(stages);
        // As many micro-batches' activations held at once as the run's first stage will hold (p for 1F1B, m for GPipe):
        // activations that no longer fit the caches make the backward slower.
        var order = ScheduleSimulator.DeviceOrder(schedule, 0, stages, microBatches);
        var inFlight = order
            .Select(
                (op, i) =>
                    order.Take(i + 1).Count(o => o.Kind == OpKind.Forward)
                    - order.Take(i + 1).Count(o => o.Kind == OpKind.Backward)
            )
            .Max();
        var concurrent = Math.Max(1, Math.Min(stages, Environment.ProcessorCount / threads));
        var analytic = CostModel.Units(
            decoder.Spec,
            new CostSettings { SequenceLength = sequenceLength, MicroBatchSize = microBatchSize }
        );
        var tokens = batch(microBatches * microBatchSize);
        var forward = Enumerable.Range(0, analytic.Count).Select(_ => new List<double>()).ToArray();
        var backward = Enumerable.Range(0, analytic.Count).Select(_ => new List<double>()).ToArray();
        decoder.train();
        try
        {
            void Round(bool keep)
            {
                Exception? failure = null;
                var copies = Enumerable
                    .Range(0, concurrent)
                    .Select(copy => new Thread(() =>
                    {
                        try
                        {
                            IntraOpThreads.SetForCurrentThread(threads);
                            ThreadAffinity.PinCurrentThread(copy * threads, threads);
                            if (copy > 0)
                            {
                                // The other copies are the load the stages put on each other: the same one-stage run,
                                // untimed (the timing's autograd function runs on one thread only).
                                PipelineRun.TrainStep(
                                    decoder,
                                    tokens,
                                    [0],
                                    ScheduleKind.OneFOneB,
                                    microBatches,
                                    threads,
                                    copy * threads
                                );
                                return;
                            }
                            var times = ChainedStep(decoder, tokens, microBatches, inFlight);
                            if (keep)
                                for (var u = 0; u < forward.Length; u++)
                                {
                                    forward[u].AddRange(times.Forward[u]);
                                    backward[u].AddRange(times.Backward[u]);
                                }
                        }
                        catch (Exception e)
                        {
                            Interlocked.CompareExchange(ref failure, e, null);
                        }
                    })
                    {
                        IsBackground = true,
                        Name = $"calibration {copy}",
                    })
                    .ToArray();
                foreach (var t in copies)
                    t.Start();
                foreach (var t in copies)
                    t.Join();
                if (failure is not null)
                    throw new InvalidOperationException(
                        $"Calibrating the split run failed: {failure.Message}",
                        failure
                    );
            }
            // Warm until the managed side of every operation is compiled at its final tier, as it is by the time the
            // split run starts; then three rounds, whose per-unit medians are the costs.
            for (var i = 0; i < 3; i++)
                Round(keep: false);
            for (var i = 0; i < 3; i++)
                Round(keep: true);
        }
        finally
        {
            decoder.zero_grad();
            decoder.eval();
        }
        static double Median(List<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted[sorted.Length / 2];
        }
        var units = analytic
            .Select(
                (u, i) =>
                    u with
                    {
                        Forward = Median(forward[i]),
                        InputGradient = Median(backward[i]),
                        WeightGradient = 0,
                    }
            )
            .ToArray();
        return (units, HandOffMs());
    }

    /// <summary>
    /// One training step of the whole model on this thread, each micro-batch's backward run once
    /// <paramref name="inFlight"/> micro-batches are held, with the time each unit took in each: forward between
    /// timestamps taken between the units, backward between the moments the gradient reaches each unit's input (an
    /// identity autograd function that notes the time as the gradient passes).
    /// </summary>
    internal static (List<double>[] Forward, List<double>[] Backward) ChainedStep(
        Decoder.Decoder decoder,
        long[,] batch,
        int microBatches,
        int inFlight
    )
    {
        int units = UnitNumbering.Count(decoder.Spec.Layers),
            b = batch.GetLength(0),
            length = batch.GetLength(1) - 1,
            per = b / microBatches;
        var forward = Enumerable.Range(0, units).Select(_ => new List<double>()).ToArray();
        var backward = Enumerable.Range(0, units).Select(_ => new List<double>()).ToArray();
        var (cos, sin) = Decoder.Rotary.Tables(decoder.Spec, length, decoder.Device);
        using var _cos = cos;
        using var _sin = sin;
        using var window = decoder.WindowMask(length);
        using var ids = torch.tensor(batch, ScalarType.Int64);
        var clock = Stopwatch.StartNew();
        // reached[mb][u]: when the gradient of micro-batch mb has passed back through unit u (the end of its backward).
        var reached = new double[microBatches][];
        var losses = new Tensor[microBatches];

        void Forward(int mb)
        {
            using var scope = NewDisposeScope();
            var tokens = ids.narrow(0, mb * per, per);
            var passed = reached[mb] = new double[units + 1];
            var x = tokens.narrow(1, 0, length);
            for (var u = 0; u < units; u++)
            {
                var start = clock.Elapsed.TotalMilliseconds;
                if (u > 0)
                {
                    var unit = u;
                    x = GradientClock.apply(x, (Action)(() => passed[unit] = clock.Elapsed.TotalMilliseconds));
                }
                x = PipelineRun.ApplyUnit(decoder, u, x, tokens, cos, sin, microBatches, window);
                if (u == units - 1)
                    _ = x.item<float>(); // as the split run reads each micro-batch's loss
                forward[u].Add(clock.Elapsed.TotalMilliseconds - start);
            }
            losses[mb] = scope.Detach(x);
        }

        void Backward(int mb)
        {
            using var scope = NewDisposeScope();
            var passed = reached[mb];
            passed[units] = clock.Elapsed.TotalMilliseconds;
            losses[mb].backward();
            passed[0] = clock.Elapsed.TotalMilliseconds;
            losses[mb].Dispose();
            for (var u = 0; u < units; u++)
                backward[u].Add(passed[u] - passed[u + 1]);
        }

        for (var mb = 0; mb < microBatches; mb++)
        {
            Forward(mb);
            if (mb + 1 >= inFlight)
                Backward(mb + 1 - inFlight);
        }
        for (var mb = Math.Max(0, microBatches - inFlight + 1); mb < microBatches; mb++)
            Backward(mb);
        return (forward, backward);
    }

    /// <summary>The identity, whose backward calls an action as the gradient passes through it.</summary>
    private sealed class GradientClock : torch.autograd.SingleTensorFunction<GradientClock>
    {
        public override string Name => nameof(GradientClock);

        public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            ctx.save_data("passed", vars[1]);
            return ((Tensor)vars[0]).alias();
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradient)
        {
            ((Action)ctx.get_data("passed"))();
            return [gradient, null!]; // none for the action
        }
    }

    /// <summary>Median time for a tensor to pass from one thread to another through the run's hand-off slot and
    /// back.</summary>
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
        })
        {
            IsBackground = true,
        };
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
