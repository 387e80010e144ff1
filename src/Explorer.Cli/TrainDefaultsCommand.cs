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
        var output_ = new Option<string>("--out", "-o") { Description = "Folder that receives one checkpoint folder per model (src/Explorer.Model/Defaults ships them).", Required = true };
        var work = new Option<string>("--work") { Description = "Folder for the training checkpoints; a rerun resumes from them.", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "explorer-defaults") };
        var models = new Option<string[]>("--models") { Description = "Which minis (default: all).", AllowMultipleArgumentsPerToken = true };
        var command = new Command("train-defaults", "Train the shipped mini models with their recorded recipes; write bf16 checkpoints and their probe scores.")
        {
            output_, work, models,
        };
        command.SetAction(async (result, cancellation) =>
        {
            try
            {
                var names = result.GetValue(models) is { Length: > 0 } given ? given : MiniPresets.All.Select(s => s.Name).ToArray();
                var specs = names.Select(n => MiniPresets.TryGet(n, out var s) ? s
                    : throw new ArgumentException($"--models: unknown mini preset '{n}'. Use: {string.Join(", ", MiniPresets.All.Select(m => m.Name))}.")).ToArray();
                foreach (var spec in specs)
                {
                    var recipe = DefaultsTraining.RecipeFor(spec);
                    var o = recipe.Options;
                    output.WriteLine($"{spec.Name}: {o.Steps} steps of {o.BatchSize} × {o.SequenceLength}, lr {o.LearningRate}, mix {recipe.Mix}");
                    var progress = new SyncProgress<TrainingProgress>(p =>
                    {
                        if (p.Step % 50 == 0 || p.Step == p.Steps)
                            output.WriteLine($"  step {p.Step}/{p.Steps}  loss {p.Loss:0.000}  {p.Elapsed.TotalSeconds:0}s, ~{p.Remaining.TotalMinutes:0.0} min left");
                    });
                    var record = await DefaultsTraining.TrainAsync(recipe, Path.Combine(result.GetValue(work)!, spec.Name), result.GetValue(output_)!, progress, cancellation);
                    output.WriteLine($"{spec.Name}: {record.Seconds:0} s, final loss {record.FinalLoss:0.000} (mean of the last 50 steps), {record.WeightBytes / 1e6:0.0} MB");
                    output.WriteLine($"  best induction head: layer {record.BestInduction.Layer + 1} head {record.BestInduction.Head} = {record.BestInduction.Induction:0.000}");
                    output.WriteLine($"  best previous-token head: layer {record.BestPreviousToken.Layer + 1} head {record.BestPreviousToken.Head} = {record.BestPreviousToken.PreviousToken:0.000}");
                }
                return ExitCodes.Ok;
            }
            catch (ArgumentException e)
            {
                error.WriteLine($"error: {e.Message}");
                return ExitCodes.BadInput;
            }
            catch (OperationCanceledException)
            {
                error.WriteLine("cancelled; rerun the same command to resume from the newest checkpoint in --work.");
                return 130;
            }
        });
        return command;
    }
}
