using System.CommandLine;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;
using Explorer.Model.Weights;

namespace Explorer.Cli;

/// <summary><c>explorer train</c>: train a mini model on the built-in corpus or a text file, with
/// checkpoints.</summary>
public static class TrainCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "A mini preset to train from its seed.",
            DefaultValueFactory = _ => MiniPresets.DeepSeek7BMini.Name,
        };
        var output_ = new Option<string>("--out", "-o")
        {
            Description = "Folder for step-NNNNNN checkpoints and the 'latest' pointer.",
            Required = true,
        };
        var resume = new Option<bool>("--resume") { Description = "Continue from the newest checkpoint in --out." };
        var text = new Option<FileInfo>("--text")
        {
            Description = "Train on this UTF-8 text file instead of the built-in corpus.",
        };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 8 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 128 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 50 };
        var every = new Option<int>("--checkpoint-every") { DefaultValueFactory = _ => 100 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1234 };
        var mix = new Option<string>("--mix")
        {
            Description = "Built-in corpus weights S:R:B (sentences, repeated random segments, brackets).",
            DefaultValueFactory = _ => "1:1:1",
        };
        var repeat = new Option<int[]>("--repeat")
        {
            Description = "Length of a repeated segment: MIN MAX tokens.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => [8, 24],
        };
        var initStd = new Option<double>("--init-std")
        {
            Description = "Standard deviation of the initial weights (output projections scaled by 1/√(2·layers)).",
            DefaultValueFactory = _ => 0.02,
        };
        var alphabet = new Option<int>("--alphabet")
        {
            Description = "Draw repeated segments from the first N ordinary tokens (0: all).",
            DefaultValueFactory = _ => 0,
        };
        var copies = new Option<int>("--copies")
        {
            Description = "How many times a random segment repeats (2–8).",
            DefaultValueFactory = _ => 2,
        };
        var command = new Command("train", "Train a mini model; progress per step, checkpoints written atomically.")
        {
            model,
            output_,
            resume,
            text,
            steps,
            batch,
            seq,
            lr,
            warmup,
            every,
            seed,
            mix,
            repeat,
            copies,
            initStd,
            alphabet,
        };
        CommandAction.Set(
            command,
            error,
            async (result, cancellation) =>
            {
                var options = new TrainingOptions
                {
                    Steps = result.GetValue(steps),
                    BatchSize = result.GetValue(batch),
                    SequenceLength = result.GetValue(seq),
                    LearningRate = result.GetValue(lr),
                    WarmupSteps = result.GetValue(warmup),
                    CheckpointEvery = result.GetValue(every),
                    Seed = result.GetValue(seed),
                };
                var problems = options.Problems();
                if (problems.Count > 0)
                    throw new ArgumentException(string.Join("; ", problems) + ".");
                var name = result.GetValue(model)!;
                if (!MiniPresets.TryGet(name, out var spec))
                    throw new ArgumentException(
                        $"Unknown mini preset '{name}'. Use one of: "
                            + $"{string.Join(", ", MiniPresets.All.Select(s => s.Name))}."
                    );
                var folder = result.GetValue(output_)!;
                using var tokenizer = MiniTokenizer.Create();
                ITrainingCorpus corpus = result.GetValue(text) is { } file
                    ? TextFileCorpus.FromBytes(
                        file.Name,
                        file.Exists
                            ? File.ReadAllBytes(file.FullName)
                            : throw new ArgumentException($"--text {file.FullName}: no such file."),
                        tokenizer,
                        options.SequenceLength + 1
                    )
                    : new BuiltInCorpus(
                        tokenizer,
                        CorpusMix.Parse(
                            result.GetValue(mix)!,
                            result.GetValue(repeat) is { Length: 2 } r
                                ? r[0]
                                : throw new ArgumentException("--repeat: give MIN MAX, e.g. --repeat 8 24."),
                            r[1],
                            result.GetValue(copies),
                            result.GetValue(alphabet)
                        )
                    );
                Decoder decoder;
                var start = 0;
                if (result.GetValue(resume) && Trainer.Latest(folder) is { } latest)
                {
                    decoder = Checkpoint.Load(latest.Directory, TorchSharp.torch.ScalarType.Float32);
                    start = latest.Step;
                    output.WriteLine($"resuming {decoder.Spec.Name} from {latest.Directory} (step {start})");
                }
                else
                    decoder = Decoder.Create(
                        spec,
                        new DecoderOptions { Seed = (ulong)options.Seed, InitStd = result.GetValue(initStd) }
                    );
                using (decoder)
                {
                    var progress = new Progress<TrainingProgress>(p =>
                    {
                        if (p.Step == 1 || p.Step % 10 == 0 || p.Step == p.Steps || p.Checkpoint is not null)
                            output.WriteLine(
                                $"step {p.Step}/{p.Steps}  loss {p.Loss:0.0000}  lr "
                                    + $"{p.LearningRate:0.00e0}  grad {p.GradientNorm:0.000}  "
                                    + $"{p.Elapsed.TotalSeconds:0}s elapsed, "
                                    + $"~{p.Remaining.TotalMinutes:0.0} min left"
                                    + (p.Checkpoint is { } c ? $"  saved {c}" : "")
                            );
                    });
                    var loss = await Trainer.TrainAsync(
                        decoder,
                        corpus,
                        options,
                        folder,
                        progress,
                        cancellation,
                        start
                    );
                    output.WriteLine(
                        $"done: final loss {loss:0.0000}; newest checkpoint {Trainer.Latest(folder)?.Directory}"
                    );
                }
                return ExitCodes.Ok;
            },
            "the newest complete checkpoint is kept."
        );
        return command;
    }
}
