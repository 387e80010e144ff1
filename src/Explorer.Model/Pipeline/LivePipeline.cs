using Explorer.Core.Pipeline;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;

namespace Explorer.Model.Pipeline;

/// <summary>
/// Pipeline work on a live model of the host, on its worker after the forwards queued before it: timing the units for
/// a split run, and one training step split for real.
/// </summary>
public sealed class LivePipeline(ModelHost host)
{
    /// <summary>
    /// Times every unit of a loaded model on the worker for a split run of <paramref name="stages"/> stage threads on
    /// this machine (<see cref="UnitProfiler.ProfileForRun"/>): the planner's measured cost basis, and the
    /// measured hand-off between stages.
    /// </summary>
    public Task<(IReadOnlyList<PipelineUnit> Units, double HandOffMs)> ProfileAsync(
        string model,
        int microBatchSize,
        int sequenceLength,
        int stages,
        ScheduleKind schedule,
        CancellationToken cancellation
    )
    {
        var live = host.Model(model);
        if (sequenceLength > live.Spec.ContextLength)
            throw new ArgumentException(
                $"Sequence length {sequenceLength} is over {model}'s context of {live.Spec.ContextLength}."
            );
        var units = UnitNumbering.Count(live.Spec.Layers);
        if (stages < 1 || stages > units)
            throw new ArgumentException($"{stages} stages: {model} has {units} units, so 1 to {units}.");
        // Runs for real support GPipe and 1F1B; other schedules are timed as 1F1B holds its micro-batches.
        var held = schedule is ScheduleKind.GPipe ? schedule : ScheduleKind.OneFOneB;
        return host.RunAsync(
            () =>
                UnitProfiler.ProfileForRun(live.Decoder, microBatchSize, sequenceLength, stages, held, sequences =>
                    TrainingBatch(live, sequences, sequenceLength)
                ),
            cancellation
        );
    }

    /// <summary>Built-in corpus text for a mini tokenizer's models, random tokens for other vocabularies; the same
    /// every call.</summary>
    private static long[,] TrainingBatch(LiveModel live, int sequences, int sequenceLength)
    {
        var random = new Random(3);
        if (live.Tokenizer is MiniTokenizer mini)
            return new BuiltInCorpus(mini).Batch(random, sequences, sequenceLength);
        var batch = new long[sequences, sequenceLength + 1];
        for (var b = 0; b < sequences; b++)
        for (var t = 0; t <= sequenceLength; t++)
            batch[b, t] = random.Next(live.Spec.VocabularySize);
        return batch;
    }

    /// <summary>
    /// Runs one training step of a loaded model split at <paramref name="stageFirstUnits"/>, each stage on its own
    /// thread (GPipe or 1F1B), on a batch of built-in corpus text (random tokens for other vocabularies). The model's
    /// gradients are cleared afterwards; its weights do not change.
    /// </summary>
    public Task<PipelineRunResult> RunPipelineStepAsync(
        string model,
        IReadOnlyList<int> stageFirstUnits,
        ScheduleKind schedule,
        int microBatches,
        int microBatchSize,
        int sequenceLength,
        CancellationToken cancellation
    )
    {
        var live = host.Model(model);
        return host.RunAsync(
            () =>
            {
                var batch = TrainingBatch(live, microBatches * microBatchSize, sequenceLength);
                live.Decoder.train();
                try
                {
                    return PipelineRun.TrainStep(live.Decoder, batch, stageFirstUnits, schedule, microBatches);
                }
                finally
                {
                    live.Decoder.zero_grad();
                    live.Decoder.eval();
                }
            },
            cancellation
        );
    }
}
