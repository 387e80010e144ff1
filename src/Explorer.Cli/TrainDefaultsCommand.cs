using System.CommandLine;
using Explorer.Core.Specs;
using Explorer.Model;
using Explorer.Model.Training;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer train-defaults</c>: trains the shipped minis with their recorded recipes and writes each as a bf16
/// checkpoint with the probe's measurements (into src/Explorer.Model/Defaults to update what ships).
/// </summary>
public static class TrainDefaultsCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var output_ = new Option<string>("--out", "-o")
        {
            Description =
                "Folder that receives one checkpoint folder per model (src/Explorer.Model/Defaults ships them).",
            Required = true,
        };
        var work = new Option<string>("--work")
        {
            Description = "Folder for the training checkpoints; a rerun resumes from them.",
            DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "explorer-defaults"),
        };
        var models = new Option<string[]>("--models")
        {
            Description = "Which minis (default: all).",
            AllowMultipleArgumentsPerToken = true,
        };
        var phase = new Option<string>("--phase")
        {
            Description =
                "induction (from scratch, the first phase) or speak (from the checkpoint in --out: the "
                + "sentence grammar).",
            DefaultValueFactory = _ => "induction",
        };
        var command = new Command(
            "train-defaults",
            "Train the shipped mini models with their recorded recipes; write bf16 checkpoints and their probe scores."
        )
        {
            output_,
            work,
            models,
            phase,
        };
        CommandAction.Set(
            command,
            error,
            async (result, cancellation) =>
            {
                var names = result.GetValue(models) is { Length: > 0 } given
                    ? given
                    : MiniPresets.All.Select(s => s.Name).ToArray();
                var specs = names
                    .Select(n =>
                        MiniPresets.TryGet(n, out var s)
                            ? s
                            : throw new ArgumentException(
                                $"--models: unknown mini preset '{n}'. Use: "
                                    + $"{string.Join(", ", MiniPresets.All.Select(m => m.Name))}."
                            )
                    )
                    .ToArray();
                var which = result.GetValue(phase)!.Trim().ToLowerInvariant();
                if (which is not ("induction" or "speak"))
                    throw new ArgumentException($"--phase '{which}': use induction or speak.");
                foreach (var spec in specs)
                {
                    var recipe =
                        which == "speak" ? DefaultsTraining.SpeakRecipeFor(spec) : DefaultsTraining.RecipeFor(spec);
                    var o = recipe.Options;
                    output.WriteLine(
                        $"{spec.Name}: {o.Steps} steps of {o.BatchSize} × {o.SequenceLength}, lr "
                            + $"{o.LearningRate}, mix {recipe.Mix}"
                    );
                    var progress = new SyncProgress<TrainingProgress>(p =>
                    {
                        if (p.Step % 50 == 0 || p.Step == p.Steps)
                            output.WriteLine(
                                $"  step {p.Step}/{p.Steps}  loss {p.Loss:0.000}  "
                                    + $"{p.Elapsed.TotalSeconds:0}s, ~{p.Remaining.TotalMinutes:0.0} min "
                                    + "left"
                            );
                    });
                    var record = await DefaultsTraining.TrainAsync(
                        recipe,
                        Path.Combine(result.GetValue(work)!, which == "speak" ? spec.Name + "-speak" : spec.Name),
                        result.GetValue(output_)!,
                        progress,
                        cancellation
                    );
                    output.WriteLine(
                        $"{spec.Name}: {record.Seconds:0} s, final loss {record.FinalLoss:0.000} "
                            + $"(mean of the last 50 steps), {record.WeightBytes / 1e6:0.0} MB"
                    );
                    output.WriteLine(
                        $"  best induction head: layer {record.BestInduction.Layer + 1} head "
                            + $"{record.BestInduction.Head} = {record.BestInduction.Induction:0.000}"
                    );
                    output.WriteLine(
                        $"  best previous-token head: layer {record.BestPreviousToken.Layer + 1} "
                            + $"head {record.BestPreviousToken.Head} = "
                            + $"{record.BestPreviousToken.PreviousToken:0.000}"
                    );
                    if (record.Speaking is { } speaking)
                        output.WriteLine(
                            $"  sentences: {speaking.Seconds:0} s, final loss "
                                + $"{speaking.FinalLoss:0.000}; lens top-1 = next token on held-out "
                                + "sentences: "
                                + $"{speaking.LensAccuracy:P1} at the last layer "
                                + $"({speaking.Predictions} predictions)"
                        );
                }
                return ExitCodes.Ok;
            },
            "rerun the same command to resume from the newest checkpoint in --work."
        );
        return command;
    }
}
