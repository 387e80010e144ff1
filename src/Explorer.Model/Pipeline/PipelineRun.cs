using System.Collections.Concurrent;
using System.Diagnostics;
using Explorer.Core.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Pipeline;

/// <summary>The outcome of one training step run as a pipeline: the loss and the measured timeline.</summary>
public sealed record PipelineRunResult(double Loss, IReadOnlyList<TimelineOp> Timeline, double MakespanMs);

/// <summary>
/// Runs one training step of a live decoder split into stages at unit boundaries (unit 0 the embedding, units
/// 1…L the layers, L + 1 the final norm and LM head, L + 2 the loss), each stage on its own thread, micro-batches
/// passed between them in the order of a GPipe or 1F1B schedule. Activations cross a boundary detached, and their
/// gradients come back the same way, so the gradients accumulated in the parameters are the unsplit model's.
/// </summary>
public static class PipelineRun
{
    /// <summary>Intra-op threads each of <paramref name="stages"/> stage threads gets: the cores shared out, at least
    /// one.</summary>
    public static int ThreadsPerStage(int stages) => Math.Max(1, Environment.ProcessorCount / Math.Max(1, stages));

    public static PipelineRunResult TrainStep(
        Decoder.Decoder decoder,
        long[,] batch,
        IReadOnlyList<int> stageFirstUnits,
        ScheduleKind schedule,
        int microBatches,
        int threadsPerStage = 0,
        int firstCore = 0
    )
    {
        if (threadsPerStage <= 0)
            threadsPerStage = ThreadsPerStage(stageFirstUnits.Count);
        int b = batch.GetLength(0),
            length = batch.GetLength(1) - 1,
            units = UnitNumbering.Count(decoder.Spec.Layers),
            stages = stageFirstUnits.Count;
        StagePlan.Validate(units, stageFirstUnits);
        if (microBatches < 1 || b % microBatches != 0)
            throw new ArgumentException(
                $"A batch of {b} sequences does not split into m = {microBatches} equal micro-batches."
            );
        var orders = Enumerable
            .Range(0, stages)
            .Select(s => ScheduleSimulator.DeviceOrder(schedule, s, stages, microBatches))
            .ToArray();
        var per = b / microBatches;
        var (cos, sin) = Decoder.Rotary.Tables(decoder.Spec, length, decoder.Device);
        using var _cos = cos;
        using var _sin = sin;
        using var window = decoder.WindowMask(length);
        var ids = torch.tensor(batch, ScalarType.Int64);

        // Messages between stages: activations forward, gradients backward, one slot per (stage, micro-batch).
        var forward = new BlockingCollection<Tensor>[stages, microBatches];
        var backward = new BlockingCollection<Tensor>[stages, microBatches];
        for (var s = 0; s < stages; s++)
        for (var mb = 0; mb < microBatches; mb++)
        {
            forward[s, mb] = new BlockingCollection<Tensor>(1);
            backward[s, mb] = new BlockingCollection<Tensor>(1);
        }
        var timeline = new ConcurrentBag<TimelineOp>();
        // With a core per stage, a stage waiting for its neighbour spins a while, as pipeline engines poll their links:
        // a thread that sleeps leaves its (virtual) core idle, to be woken a millisecond or more later with cold
        // caches.
        var spin = (long)stages * threadsPerStage <= Environment.ProcessorCount;
        var losses = new double[microBatches];
        var clock = Stopwatch.StartNew();
        Exception? failure = null;

        void RunStage(int s)
        {
            // Each stage's own intra-op threads (an OpenMP setting of this thread only): stages that share the cores do
            // not each start a team as wide as the machine.
            IntraOpThreads.SetForCurrentThread(threadsPerStage);
            ThreadAffinity.PinCurrentThread(firstCore + s * threadsPerStage, threadsPerStage);
            int first = stageFirstUnits[s],
                last = s + 1 < stages ? stageFirstUnits[s + 1] - 1 : units - 1;
            var kept = new (Tensor? Input, Tensor Output)[microBatches];
            foreach (var (mb, kind) in orders[s])
            {
                // An operation's time starts when its input has arrived (waiting for the neighbouring stage is bubble)
                // and ends as its output is ready to send.
                double start,
                    end;
                // Tensors are freed as the operation ends, not left to the finalizer thread, which would take a core
                // from the stages: an operation's temporaries with its scope, what it keeps or sends detached from it.
                if (kind == OpKind.Forward)
                {
                    using var scope = NewDisposeScope();
                    var tokens = ids.narrow(0, mb * per, per);
                    Tensor? input = null;
                    Tensor x =
                        first == 0
                            ? tokens.narrow(1, 0, length)
                            : (input = Receive(forward[s, mb], spin).requires_grad_(true));
                    start = clock.Elapsed.TotalMilliseconds;
                    for (var u = first; u <= last; u++)
                    {
                        x = ApplyUnit(decoder, u, x, tokens, cos, sin, microBatches, window);
                        if (u == units - 1)
                            losses[mb] = x.item<float>();
                    }
                    kept[mb] = (input, scope.Detach(x));
                    end = clock.Elapsed.TotalMilliseconds;
                    if (s + 1 < stages)
                        forward[s + 1, mb].Add(scope.Detach(x.detach()));
                }
                else
                {
                    using var scope = NewDisposeScope();
                    var (input, output) = kept[mb];
                    var gradient = s + 1 < stages ? Receive(backward[s, mb], spin) : null;
                    start = clock.Elapsed.TotalMilliseconds;
                    if (gradient is not null)
                        output.backward([gradient]);
                    else
                        output.backward();
                    end = clock.Elapsed.TotalMilliseconds;
                    if (s > 0)
                        backward[s - 1, mb].Add(scope.Detach(input!.grad!.detach()));
                    gradient?.Dispose();
                    output.Dispose();
                    input?.Dispose();
                    kept[mb] = default;
                }
                timeline.Add(new TimelineOp(s, mb, 0, kind, start, end));
            }
        }

        var threads = Enumerable
            .Range(0, stages)
            .Select(s => new Thread(() =>
            {
                try
                {
                    RunStage(s);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                    foreach (var slot in forward)
                        slot.CompleteAdding();
                    foreach (var slot in backward)
                        slot.CompleteAdding();
                }
            })
            {
                IsBackground = true,
                Name = $"pipeline stage {s}",
            })
            .ToArray();
        foreach (var t in threads)
            t.Start();
        foreach (var t in threads)
            t.Join();
        if (failure is not null)
            throw new InvalidOperationException($"A pipeline stage failed: {failure.Message}", failure);
        var ops = timeline.OrderBy(o => o.Start).ToArray();
        return new PipelineRunResult(losses.Sum(), ops, ops.Length == 0 ? 0 : ops.Max(o => o.End));
    }

    /// <summary>
    /// The next message in a slot: spinning for up to <see cref="SpinMs"/> while it is empty, then blocked on it, so
    /// that a stage that waits long, or shares its core with other work, gives the core up.
    /// </summary>
    private static Tensor Receive(BlockingCollection<Tensor> slot, bool spin)
    {
        if (spin)
        {
            var waited = Stopwatch.StartNew();
            while (waited.Elapsed.TotalMilliseconds < SpinMs)
            {
                if (slot.TryTake(out var message))
                    return message;
                if (slot.IsAddingCompleted)
                    break; // a stage failed: Take below throws
                Thread.SpinWait(64);
            }
        }
        return slot.Take();
    }

    /// <summary>How long a waiting stage spins before it sleeps: longer than a steady-state wait, short against a
    /// step.</summary>
    private const double SpinMs = 5;

    /// <summary>
    /// Unit <paramref name="unit"/> of the decoder applied to <paramref name="x"/>: the embedding (x the token ids of
    /// the micro-batch's inputs), a layer (under its window mask, when it slides), the final norm and LM head, or the
    /// loss of <paramref name="tokens"/>' next tokens, taken over <paramref name="microBatches"/> so that the
    /// micro-batches' losses add up to the batch's mean.
    /// </summary>
    internal static Tensor ApplyUnit(
        Decoder.Decoder decoder,
        int unit,
        Tensor x,
        Tensor tokens,
        Tensor cos,
        Tensor sin,
        int microBatches,
        Tensor? window
    )
    {
        var layers = decoder.Layers;
        if (unit == 0)
            return decoder.Embed(x);
        if (unit <= layers.Count)
            return layers[unit - 1].Forward(x, cos, sin, decoder.MaskFor(unit - 1, window));
        if (unit == layers.Count + 1)
            return decoder.Head(x);
        var length = tokens.shape[1] - 1;
        var targets = tokens.narrow(1, 1, length);
        return nn.functional.cross_entropy(x.reshape(-1, decoder.Spec.VocabularySize), targets.reshape(-1))
            / microBatches;
    }
}
