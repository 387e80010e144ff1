using System.Diagnostics;
using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Training;

/// <summary>How one shipped mini is trained: the options, the seed of its initial weights and the corpus mix.</summary>
/// <summary>
/// How a shipped mini is trained. <paramref name="ContinueFromShipped"/>: start from the checkpoint already in the
/// output folder (the second phase, which teaches the induction-trained minis the sentence grammar).
/// </summary>
public sealed record DefaultsRecipe(
    ModelSpec Spec,
    TrainingOptions Options,
    ulong InitSeed,
    CorpusMix Mix,
    bool ContinueFromShipped = false
);

/// <summary>The second phase: its recipe, its time and loss, and the lens on held-out sentences after it.</summary>
public sealed record SpeakingRecord(
    int Steps,
    double LearningRate,
    CorpusMix Mix,
    double Seconds,
    double FinalLoss,
    double LensAccuracy,
    double[] LensAccuracyByLayer,
    int Predictions
);

/// <summary>What <see cref="DefaultsTraining"/> wrote next to a shipped checkpoint (<see
/// cref="TrainedDefaults.RecordFile"/>).</summary>
public sealed record DefaultsRecord(
    string Model,
    int Steps,
    int BatchSize,
    int SequenceLength,
    double LearningRate,
    int Seed,
    ulong InitSeed,
    CorpusMix Mix,
    double Seconds,
    double FinalLoss,
    HeadScore BestInduction,
    HeadScore BestPreviousToken,
    long WeightBytes,
    string Machine,
    SpeakingRecord? Speaking = null
);

/// <summary>
/// Trains the minis that ship with the app (<c>explorer train-defaults</c>) and writes each as a bf16 checkpoint
/// with its tokenizer marker and a record of the run, measured on the written file by the induction probe.
/// </summary>
public static class DefaultsTraining
{
    /// <summary>
    /// Only repeated random segments (8–32 ordinary tokens, twice): every second copy is predictable by induction
    /// alone, so nothing else competes for the signal that carries the model off its plateau.
    /// </summary>
    public static readonly CorpusMix Mix = new(
        Sentences: 0,
        Repeats: 1,
        Brackets: 0,
        MinRepeat: 8,
        MaxRepeat: 32,
        Copies: 2
    );

    /// <summary>The second phase's mix: mostly sentences, with repeated segments kept so the induction heads
    /// stay.</summary>
    public static readonly CorpusMix SpeakMix = new(
        Sentences: 3,
        Repeats: 1,
        Brackets: 0,
        MinRepeat: 8,
        MaxRepeat: 32,
        Copies: 2
    );

    /// <summary>The second phase: from the shipped induction-trained weights, the sentence grammar at a lower
    /// rate.</summary>
    public static DefaultsRecipe SpeakRecipeFor(ModelSpec spec) =>
        new(
            spec,
            new TrainingOptions
            {
                Steps = 600,
                BatchSize = 32,
                SequenceLength = 64,
                LearningRate = 1e-3,
                WarmupSteps = 20,
                WeightDecay = 0.1,
                CheckpointEvery = 100,
                Seed = 4321,
            },
            InitSeed: 1234,
            SpeakMix,
            ContinueFromShipped: true
        );

    public static DefaultsRecipe RecipeFor(ModelSpec spec) =>
        new(
            spec,
            new TrainingOptions
            {
                Steps = 3000,
                BatchSize = 32,
                SequenceLength = 64,
                LearningRate = 3e-3,
                WarmupSteps = 50,
                WeightDecay = 0.1,
                CheckpointEvery = 250,
                Seed = 1234,
            },
            InitSeed: 1234,
            Mix
        );

    /// <summary>
    /// Trains <paramref name="recipe"/> with checkpoints in <paramref name="workFolder"/> (resuming from its newest
    /// one), then writes the shipped folder <paramref name="outputFolder"/>/NAME atomically and returns its record.
    /// </summary>
    public static async Task<DefaultsRecord> TrainAsync(
        DefaultsRecipe recipe,
        string workFolder,
        string outputFolder,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellation
    )
    {
        using var tokenizer = MiniTokenizer.Create();
        var corpus = new BuiltInCorpus(tokenizer, recipe.Mix);
        var start = 0;
        Decoder.Decoder decoder;
        if (Trainer.Latest(workFolder) is { } latest)
        {
            decoder = Checkpoint.Load(latest.Directory, ScalarType.Float32);
            start = latest.Step;
        }
        else if (recipe.ContinueFromShipped)
        {
            var shipped = Path.Combine(outputFolder, recipe.Spec.Name);
            if (!File.Exists(Path.Combine(shipped, Checkpoint.ConfigFile)))
                throw new ArgumentException(
                    $"The second phase starts from the first phase's {shipped}, which is not there: run "
                        + "train-defaults without --phase first."
                );
            decoder = Checkpoint.Load(shipped, ScalarType.Float32);
        }
        else
            decoder = Decoder.Decoder.Create(recipe.Spec, new Decoder.DecoderOptions { Seed = recipe.InitSeed });
        var previousSeconds =
            start > 0 && File.Exists(Path.Combine(workFolder, SecondsFile))
                ? double.Parse(
                    File.ReadAllText(Path.Combine(workFolder, SecondsFile)),
                    System.Globalization.CultureInfo.InvariantCulture
                )
                : 0;
        var losses = new Queue<double>();
        var watch = Stopwatch.StartNew();
        using (decoder)
        {
            await Trainer.TrainAsync(
                decoder,
                corpus,
                recipe.Options,
                workFolder,
                new SyncProgress<TrainingProgress>(p =>
                {
                    losses.Enqueue(p.Loss);
                    if (losses.Count > 50)
                        losses.Dequeue();
                    progress?.Report(p);
                }),
                cancellation,
                start
            );
            var seconds = previousSeconds + watch.Elapsed.TotalSeconds;
            File.WriteAllText(
                Path.Combine(workFolder, SecondsFile),
                seconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture)
            );

            Directory.CreateDirectory(outputFolder);
            var final = Path.Combine(outputFolder, recipe.Spec.Name);
            var temporary = final + ".tmp";
            if (Directory.Exists(temporary))
                Directory.Delete(temporary, true);
            Checkpoint.Save(decoder, temporary, ScalarType.BFloat16);
            File.WriteAllText(Path.Combine(temporary, MiniTokenizer.MarkerFile), MiniTokenizer.MarkerText);

            // Measure what ships: the bf16 file read back, as the app will load it.
            IReadOnlyList<HeadScore> scores;
            LensAccuracy accuracy;
            using (var shipped = Checkpoint.Load(temporary, ScalarType.Float32))
            {
                scores = AttentionProbe.Measure(shipped);
                accuracy = SentenceProbe.Measure(shipped, tokenizer);
            }
            var finalLoss = losses.Count > 0 ? losses.Average() : double.NaN;
            var options = recipe.Options;
            var weightBytes = new FileInfo(Path.Combine(temporary, Checkpoint.SingleFile)).Length;
            DefaultsRecord record;
            if (recipe.ContinueFromShipped)
            {
                // The first phase's record stays; the probe is measured again on what now ships, and the phase is
                // added.
                var first = JsonSerializer.Deserialize<DefaultsRecord>(
                    File.ReadAllText(Path.Combine(final, TrainedDefaults.RecordFile))
                )!;
                record = first with
                {
                    BestInduction = scores.MaxBy(s => s.Induction)!,
                    BestPreviousToken = scores.MaxBy(s => s.PreviousToken)!,
                    WeightBytes = weightBytes,
                    Speaking = new SpeakingRecord(
                        options.Steps,
                        options.LearningRate,
                        recipe.Mix,
                        Math.Round(seconds),
                        Math.Round(finalLoss, 4),
                        accuracy.Final,
                        accuracy.ByLayer,
                        accuracy.Predictions
                    ),
                };
            }
            else
                record = new DefaultsRecord(
                    recipe.Spec.Name,
                    options.Steps,
                    options.BatchSize,
                    options.SequenceLength,
                    options.LearningRate,
                    options.Seed,
                    recipe.InitSeed,
                    recipe.Mix,
                    Math.Round(seconds),
                    Math.Round(finalLoss, 4),
                    scores.MaxBy(s => s.Induction)!,
                    scores.MaxBy(s => s.PreviousToken)!,
                    weightBytes,
                    $"{Environment.ProcessorCount} cores, "
                        + $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}"
                );
            File.WriteAllText(
                Path.Combine(temporary, TrainedDefaults.RecordFile),
                JsonSerializer.Serialize(record, Json)
            );
            if (Directory.Exists(final))
                Directory.Delete(final, true);
            Directory.Move(temporary, final);
            return record;
        }
    }

    private const string SecondsFile = "seconds";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };
}
