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
    /// <summary>Intra-op threads each of <paramref name="stages"/> stage threads gets: the cores shared out, at least one.</summary>
    public static int ThreadsPerStage(int stages) => Math.Max(1, Environment.ProcessorCount / Math.Max(1, stages));

    public static PipelineRunResult TrainStep(Decoder.Decoder decoder, long[,] batch, IReadOnlyList<int> stageFirstUnits,
        ScheduleKind schedule, int microBatches, int threadsPerStage = 0, int firstCore = 0)
    {
        if (threadsPerStage <= 0)
            threadsPerStage = ThreadsPerStage(stageFirstUnits.Count);
        int b = batch.GetLength(0), length = batch.GetLength(1) - 1, units = decoder.Spec.Layers + 3, stages = stageFirstUnits.Count;
        StagePlan.Validate(units, stageFirstUnits);
        if (microBatches < 1 || b % microBatches != 0)
            throw new ArgumentException($"A batch of {b} sequences does not split into m = {microBatches} equal micro-batches.");
        var orders = Enumerable.Range(0, stages).Select(s => ScheduleSimulator.DeviceOrder(schedule, s, stages, microBatches)).ToArray();
        var per = b / microBatches;
        var layers = decoder.Layers;
        var (cos, sin) = Decoder.Rotary.Tables(length, decoder.Spec.HeadDim, decoder.Spec.RopeTheta, decoder.Device);
        using var _cos = cos;
        using var _sin = sin;
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
        var losses = new double[microBatches];
        var clock = Stopwatch.StartNew();
        Exception? failure = null;

        void RunStage(int s)
        {
            // Each stage's own intra-op threads (an OpenMP setting of this thread only): stages that share the cores do
            // not each start a team as wide as the machine.
            IntraOpThreads.SetForCurrentThread(threadsPerStage);
            ThreadAffinity.PinCurrentThread(firstCore + s * threadsPerStage, threadsPerStage);
            int first = stageFirstUnits[s], last = s + 1 < stages ? stageFirstUnits[s + 1] - 1 : units - 1;
            var kept = new (Tensor? Input, Tensor Output)[microBatches];
            foreach (var (mb, kind) in orders[s])
            {
                var start = clock.Elapsed.TotalMilliseconds;
                if (kind == OpKind.Forward)
                {
                    var tokens = ids.narrow(0, mb * per, per);
                    Tensor? input = null;
                    Tensor x = first == 0 ? tokens.narrow(1, 0, length) : (input = forward[s, mb].Take().requires_grad_(true));
                    for (var u = first; u <= last; u++)
                    {
                        if (u == 0)
                            x = decoder.Embed(x);
                        else if (u <= layers.Count)
                            x = layers[u - 1].Forward(x, cos, sin);
                        else if (u == layers.Count + 1)
                            x = decoder.Head(x);
                        else
                        {
                            var targets = tokens.narrow(1, 1, length);
                            // Each micro-batch's mean loss over m: the sum is the whole batch's mean.
                            x = nn.functional.cross_entropy(x.reshape(-1, decoder.Spec.VocabularySize), targets.reshape(-1)) / microBatches;
                            losses[mb] = x.item<float>();
                        }
                    }
                    kept[mb] = (input, x);
                    if (s + 1 < stages)
                        forward[s + 1, mb].Add(x.detach());
                }
                else
                {
                    var (input, output) = kept[mb];
                    if (s + 1 < stages)
                        output.backward([backward[s, mb].Take()]);
                    else
                        output.backward();
                    if (s > 0)
                        backward[s - 1, mb].Add(input!.grad!.detach());
                    kept[mb] = default;
                }
                timeline.Add(new TimelineOp(s, mb, 0, kind, start, clock.Elapsed.TotalMilliseconds));
            }
        }

        var threads = Enumerable.Range(0, stages).Select(s => new Thread(() =>
        {
            try
            {
                RunStage(s);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                foreach (var slot in forward) slot.CompleteAdding();
                foreach (var slot in backward) slot.CompleteAdding();
            }
        }) { IsBackground = true, Name = $"pipeline stage {s}" }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        if (failure is not null)
            throw new InvalidOperationException($"A pipeline stage failed: {failure.Message}", failure);
        var ops = timeline.OrderBy(o => o.Start).ToArray();
        return new PipelineRunResult(losses.Sum(), ops, ops.Length == 0 ? 0 : ops.Max(o => o.End));
    }
}
