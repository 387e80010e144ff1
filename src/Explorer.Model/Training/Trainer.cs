using System.Text.Json;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Training;

/// <summary>How a model is trained: AdamW, linear warm-up then cosine decay, gradient clipping, fixed seeds.</summary>
public sealed record TrainingOptions
{
    public int Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    public int SequenceLength { get; init; } = 128;
    public double LearningRate { get; init; } = 1e-3;
    public int WarmupSteps { get; init; } = 50;

    /// <summary>The cosine ends at this fraction of the peak rate.</summary>
    public double MinLearningRateRatio { get; init; } = 0.1;
    public double WeightDecay { get; init; } = 0.1;
    public double ClipNorm { get; init; } = 1.0;
    public int Seed { get; init; } = 1234;

    /// <summary>Write a checkpoint every this many steps (0: only at the end).</summary>
    public int CheckpointEvery { get; init; } = 100;

    public IReadOnlyList<string> Problems()
    {
        var p = new List<string>();
        if (Steps < 1)
            p.Add($"steps {Steps}: use at least 1");
        if (BatchSize < 1)
            p.Add($"batch size {BatchSize}: use at least 1");
        if (SequenceLength < 2)
            p.Add($"sequence length {SequenceLength}: use at least 2");
        if (!(LearningRate > 0) || LearningRate > 1)
            p.Add($"learning rate {LearningRate}: use a value in (0, 1]");
        if (WarmupSteps < 0)
            p.Add($"warm-up {WarmupSteps}: must not be negative");
        if (MinLearningRateRatio is < 0 or > 1)
            p.Add($"minimum learning-rate ratio {MinLearningRateRatio}: use 0 to 1");
        if (WeightDecay < 0)
            p.Add($"weight decay {WeightDecay}: must not be negative");
        if (!(ClipNorm > 0))
            p.Add($"gradient clip {ClipNorm}: must be positive");
        if (CheckpointEvery < 0)
            p.Add($"checkpoint interval {CheckpointEvery}: must not be negative");
        return p;
    }

    /// <summary>Learning rate at step s (0-based): linear warm-up, then cosine to the minimum.</summary>
    public double LearningRateAt(int step)
    {
        if (step < WarmupSteps)
            return LearningRate * (step + 1) / WarmupSteps;
        var progress = Steps <= WarmupSteps ? 1 : (double)(step - WarmupSteps) / Math.Max(1, Steps - WarmupSteps - 1);
        var floor = LearningRate * MinLearningRateRatio;
        return floor + (LearningRate - floor) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }
}

/// <summary>One step's report: the loss, the rate, each layer's gradient norm, and time.</summary>
public sealed record TrainingProgress(
    int Step,
    int Steps,
    double Loss,
    double LearningRate,
    double GradientNorm,
    double[] LayerGradientNorms,
    TimeSpan Elapsed,
    TimeSpan Remaining,
    string? Checkpoint
);

/// <summary>
/// Trains a decoder on a corpus. Checkpoints go to <c>step-NNNNNN</c> folders written under a temporary name and
/// renamed when complete, and <c>latest</c> (written the same way) names the newest, so a crash at any moment leaves
/// the previous checkpoint whole and findable.
/// </summary>
public static class Trainer
{
    public const string LatestFile = "latest";
    public const string StateFile = "trainer.json";

    public static async Task<double> TrainAsync(
        Decoder.Decoder decoder,
        ITrainingCorpus corpus,
        TrainingOptions options,
        string? outputDirectory,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellation,
        int startStep = 0
    )
    {
        var problems = options.Problems();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid training options: " + string.Join("; ", problems) + ".");
        if (options.SequenceLength > decoder.Spec.ContextLength)
            throw new ArgumentException(
                $"Sequence length {options.SequenceLength} is over {decoder.Spec.Name}'s context of "
                    + $"{decoder.Spec.ContextLength}."
            );
        if (decoder.DType != ScalarType.Float32)
            throw new ArgumentException($"Training runs in fp32; this decoder is {decoder.DType}.");
        await Task.Yield();
        torch.manual_seed(options.Seed);
        var random = new Random(options.Seed + startStep);
        decoder.train();
        using var optimizer = torch.optim.AdamW(
            decoder.parameters(),
            options.LearningRate,
            0.9,
            0.95,
            1e-8,
            options.WeightDecay,
            false,
            false
        );
        var layers = decoder.named_parameters().Select(p => (Layer: LayerOf(p.name), p.parameter)).ToArray();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        double loss = double.NaN;
        try
        {
            for (var step = startStep; step < options.Steps; step++)
            {
                cancellation.ThrowIfCancellationRequested();
                var lr = options.LearningRateAt(step);
                foreach (var group in optimizer.ParamGroups)
                    group.LearningRate = lr;
                double gradNorm;
                var layerNorms = new double[decoder.Spec.Layers];
                using (var scope = NewDisposeScope())
                {
                    var batch = corpus.Batch(random, options.BatchSize, options.SequenceLength);
                    var ids = torch.tensor(batch, ScalarType.Int64).to(decoder.Device);
                    var inputs = ids.narrow(1, 0, options.SequenceLength);
                    var targets = ids.narrow(1, 1, options.SequenceLength);
                    optimizer.zero_grad();
                    var logits = decoder.Forward(inputs);
                    var lossTensor = nn.functional.cross_entropy(
                        logits.reshape(-1, decoder.Spec.VocabularySize),
                        targets.reshape(-1)
                    );
                    lossTensor.backward();
                    foreach (var (layer, parameter) in layers)
                        if (layer >= 0 && parameter.grad is { } grad)
                            layerNorms[layer] += (grad * grad).sum().item<float>();
                    gradNorm = nn.utils.clip_grad_norm_(decoder.parameters(), options.ClipNorm, 2);
                    optimizer.step();
                    loss = lossTensor.item<float>();
                }
                for (var l = 0; l < layerNorms.Length; l++)
                    layerNorms[l] = Math.Sqrt(layerNorms[l]);
                string? saved = null;
                var done = step + 1;
                if (
                    outputDirectory is not null
                    && (done == options.Steps || (options.CheckpointEvery > 0 && done % options.CheckpointEvery == 0))
                )
                    saved = SaveCheckpoint(decoder, outputDirectory, done, loss, options);
                var perStep = watch.Elapsed / (done - startStep);
                progress?.Report(
                    new TrainingProgress(
                        done,
                        options.Steps,
                        loss,
                        lr,
                        gradNorm,
                        layerNorms,
                        watch.Elapsed,
                        perStep * (options.Steps - done),
                        saved
                    )
                );
                if (done % 16 == 0)
                    Hosting.ProcessMemory.Trim();
            }
        }
        finally
        {
            decoder.eval();
        }
        return loss;
    }

    private static int LayerOf(string name)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal))
            return -1;
        var end = name.IndexOf('.', prefix.Length);
        return int.Parse(name.AsSpan(prefix.Length, end - prefix.Length));
    }

    /// <summary>Writes step-NNNNNN atomically and then points <c>latest</c> at it.</summary>
    public static string SaveCheckpoint(
        Decoder.Decoder decoder,
        string outputDirectory,
        int step,
        double loss,
        TrainingOptions options
    )
    {
        Directory.CreateDirectory(outputDirectory);
        var name = $"step-{step:D6}";
        var final = Path.Combine(outputDirectory, name);
        var temporary = final + ".tmp";
        if (Directory.Exists(temporary))
            Directory.Delete(temporary, true);
        Checkpoint.Save(decoder, temporary);
        File.WriteAllText(
            Path.Combine(temporary, StateFile),
            JsonSerializer.Serialize(
                new
                {
                    step,
                    loss,
                    options,
                }
            )
        );
        if (decoder.Spec.VocabularySize == Core.Specs.MiniPresets.Vocabulary)
            File.WriteAllText(
                Path.Combine(temporary, Tokenization.MiniTokenizer.MarkerFile),
                Tokenization.MiniTokenizer.MarkerText
            );
        if (Directory.Exists(final))
            Directory.Delete(final, true);
        Directory.Move(temporary, final);
        var pointer = Path.Combine(outputDirectory, LatestFile);
        File.WriteAllText(pointer + ".tmp", name);
        File.Move(pointer + ".tmp", pointer, overwrite: true);
        return final;
    }

    /// <summary>The newest complete checkpoint in a training folder and its step, or null.</summary>
    public static (string Directory, int Step)? Latest(string outputDirectory)
    {
        var pointer = Path.Combine(outputDirectory, LatestFile);
        if (!File.Exists(pointer))
            return null;
        var name = File.ReadAllText(pointer).Trim();
        var directory = Path.Combine(outputDirectory, name);
        if (name != Path.GetFileName(name) || !Directory.Exists(directory))
            return null;
        using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, StateFile)));
        return (directory, state.RootElement.GetProperty("step").GetInt32());
    }
}
