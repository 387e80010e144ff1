using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Model.Weights;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer patch</c>: an exact sweep on a clean and a corrupted prompt, told apart by two answer tokens: residual
/// patching (layer × position), head ablation (layer × head) or layer removal (layer). Layers numbered as the pages
/// number them: row 0 of a residual sweep is the embedding, row l the state after layer l.
/// </summary>
public static class PatchCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = "A mini preset (deepseek-7b-mini, deepseek-67b-mini).",
        };
        var weights = new Option<string>("--weights", "-w")
        {
            Description = "A checkpoint folder (loaded resident; with --stream, run layer by layer from its files).",
        };
        var stream = new Option<bool>("--stream")
        {
            Description =
                "With --weights: run the checkpoint streamed (attribution patching and dla; exact "
                + "sweeps need it resident).",
        };
        var clean = new Option<string>("--clean")
        {
            Description = "The clean prompt (text; token ids with --ids).",
            Required = true,
        };
        var corrupted = new Option<string>("--corrupted")
        {
            Description =
                "The corrupted prompt, as many tokens as the clean one (not for --sweep dla, which "
                + "reads the clean run alone).",
        };
        var ids = new Option<bool>("--ids")
        {
            Description = "Read --clean, --corrupted, --answer and --wrong as token ids (comma-separated).",
        };
        var answer = new Option<string>("--answer")
        {
            Description = "The clean run's answer: one token (text, or an id with --ids).",
            Required = true,
        };
        var wrong = new Option<string>("--wrong") { Description = "The corrupted run's answer.", Required = true };
        var sweep = new Option<string>("--sweep")
        {
            Description =
                "residual, heads (each head zeroed), head-patching (each head's output from the clean "
                + "run), layers, curve (layers removed together, least block influence first), or dla "
                + "(direct logit attribution of every head and MLP on the clean prompt).",
            DefaultValueFactory = _ => "residual",
        };
        var method = new Option<string>("--method")
        {
            Description =
                "exact, or attribution (residual sweep: every site from two forwards and one backward, "
                + "to first order).",
            DefaultValueFactory = _ => "exact",
        };
        var metric = new Option<string>("--metric")
        {
            Description = "logit-difference (answer − wrong) or probability (of the answer).",
            DefaultValueFactory = _ => "logit-difference",
        };
        var direction = new Option<string>("--direction")
        {
            Description = "denoise (clean patched into corrupted) or noise (corrupted into clean; the answers swap).",
            DefaultValueFactory = _ => "denoise",
        };
        var check = new Option<bool>("--check")
        {
            Description = "With --method attribution: run the exact sweep too and print their rank correlation.",
        };
        var json = new Option<FileInfo>("--json") { Description = "Write the sweep as JSON." };
        var command = new Command(
            "patch",
            "Run an exact patching or ablation sweep and print which layers, positions or heads carry the answer."
        )
        {
            model,
            weights,
            stream,
            clean,
            corrupted,
            ids,
            answer,
            wrong,
            sweep,
            method,
            metric,
            direction,
            check,
            json,
        };
        CommandAction.Set(command, error, result =>
        {
            var kind = result.GetValue(sweep)!.Trim().ToLowerInvariant();
            if (kind is not ("residual" or "heads" or "head-patching" or "layers" or "curve" or "dla"))
                throw new ArgumentException(
                    $"--sweep '{kind}': use residual, heads, head-patching, layers, curve or dla."
                );
            var how = result.GetValue(method)!.Trim().ToLowerInvariant();
            if (how is not ("exact" or "attribution"))
                throw new ArgumentException($"--method '{how}': use exact or attribution.");
            if (how == "attribution" && kind != "residual")
                throw new ArgumentException(
                    $"--method attribution estimates the residual sweep; --sweep {kind} runs exact."
                );
            var measure = result.GetValue(metric)!.Trim().ToLowerInvariant() switch
            {
                "logit-difference" => PatchMetric.LogitDifference,
                "probability" => PatchMetric.AnswerProbability,
                var other => throw new ArgumentException($"--metric '{other}': use logit-difference or probability."),
            };
            var noise = result.GetValue(direction)!.Trim().ToLowerInvariant() switch
            {
                "denoise" => false,
                "noise" => true,
                var other => throw new ArgumentException($"--direction '{other}': use denoise or noise."),
            };
            using var live = ModelArguments.Open(
                result.GetValue(model),
                result.GetValue(weights),
                "cpu",
                result.GetValue(stream),
                warnings: error
            );
            var asIds = result.GetValue(ids);
            int[] Prompt(string text) =>
                asIds ? ForwardCommand.ParseTokens(text) : live.Encode(text, ForwardCommand.DefaultMaxTokens);
            int Token(string option, string text)
            {
                var tokens = Prompt(text);
                return tokens.Length == 1
                    ? tokens[0]
                    : throw new ArgumentException($"{option} '{text}' is {tokens.Length} tokens; give one token.");
            }
            if (kind == "dla")
            {
                var cleanIds = Prompt(result.GetValue(clean)!);
                var dla = DirectLogitAttribution.Compute(
                    live.Decoder,
                    cleanIds,
                    Token("--answer", result.GetValue(answer)!),
                    Token("--wrong", result.GetValue(wrong)!)
                );
                PrintDla(output, live, dla);
                if (result.GetValue(json) is { } dlaFile)
                {
                    var rows = Enumerable
                        .Range(0, dla.Heads.GetLength(0))
                        .Select(l => new
                        {
                            layer = l + 1,
                            heads = Enumerable.Range(0, dla.Heads.GetLength(1)).Select(h => dla.Heads[l, h]).ToArray(),
                            mlp = dla.Mlp[l],
                            attentionBias = dla.AttentionBias[l],
                        });
                    File.WriteAllText(
                        dlaFile.FullName + ".tmp",
                        JsonSerializer.Serialize(
                            new
                            {
                                model = live.Name,
                                sweep = "direct logit attribution",
                                clean = cleanIds,
                                answer = dla.Answer,
                                wrong = dla.Wrong,
                                embedding = dla.Embedding,
                                total = dla.Total,
                                logitDifference = dla.Actual,
                                layers = rows,
                            }
                        )
                    );
                    File.Move(dlaFile.FullName + ".tmp", dlaFile.FullName, overwrite: true);
                    output.WriteLine($"wrote {dlaFile.FullName}");
                }
                return ExitCodes.Ok;
            }
            if (string.IsNullOrWhiteSpace(result.GetValue(corrupted)))
                throw new ArgumentException(
                    $"--sweep {kind} patches or measures against a corrupted prompt: give --corrupted."
                );
            var problem = new PatchingProblem(
                Prompt(result.GetValue(clean)!),
                Prompt(result.GetValue(corrupted)!),
                Token("--answer", result.GetValue(answer)!),
                Token("--wrong", result.GetValue(wrong)!)
            );
            problem = problem with { Metric = measure };
            if (noise)
                problem = problem.Reversed();
            problem.Check(live.Spec.VocabularySize);
            var lastTenth = 0;
            var progress = new Model.SyncProgress<double>(f =>
            {
                if ((int)(f * 10) > lastTenth)
                    error.WriteLine($"  {(lastTenth = (int)(f * 10)) * 10}%");
            });
            if (kind == "curve")
            {
                var curve = Sweeps.LayerRemovalCurve(live.Decoder, problem, progress);
                output.WriteLine(
                    $"{live.Name}: layers removed together, least block influence first (order "
                        + $"{string.Join(" ", curve.Order.Select(l => l + 1))})"
                );
                output.WriteLine(
                    "  removed  fraction  "
                        + $"{(problem.Metric == PatchMetric.LogitDifference ? "logit difference" : "P(answer)"),
                                16} "
                        + " KL from clean (nats)"
                );
                foreach (var point in curve.Points)
                    output.WriteLine(
                        $"  {point.Removed, 7}  {point.Fraction, 8:0.000}  {point.Metric, 16:0.000} "
                            + $" {point.KlFromClean, 20:0.000}"
                    );
                if (result.GetValue(json) is { } curveFile)
                {
                    File.WriteAllText(
                        curveFile.FullName + ".tmp",
                        JsonSerializer.Serialize(
                            new
                            {
                                model = live.Name,
                                order = curve.Order.Select(l => l + 1),
                                points = curve.Points,
                            },
                            CliOutput.Document
                        )
                    );
                    File.Move(curveFile.FullName + ".tmp", curveFile.FullName, overwrite: true);
                    output.WriteLine($"wrote {curveFile.FullName}");
                }
                return ExitCodes.Ok;
            }
            var sweepResult = kind switch
            {
                "residual" when how == "attribution" => Sweeps.ResidualAttribution(live.Decoder, problem),
                "residual" => Sweeps.ResidualPatching(live.Decoder, problem, progress),
                "heads" => Sweeps.HeadAblation(live.Decoder, problem, progress: progress),
                "head-patching" => Sweeps.HeadPatching(live.Decoder, problem, progress),
                _ => Sweeps.LayerRemoval(live.Decoder, problem, progress),
            };
            Print(output, live, sweepResult);
            if (how == "attribution" && result.GetValue(check))
            {
                var exact = Sweeps.ResidualPatching(live.Decoder, problem, progress);
                output.WriteLine(
                    $"rank correlation with exact patching (Spearman, {exact.Values.Length} sites): "
                        + $"{Sweeps.RankCorrelation(exact.Values, sweepResult.Values):0.000}"
                );
            }
            if (result.GetValue(json) is { } file)
            {
                var values = sweepResult.Values;
                var rows = Enumerable
                    .Range(0, values.GetLength(0))
                    .Select(r => Enumerable.Range(0, values.GetLength(1)).Select(c => values[r, c]).ToArray())
                    .ToArray();
                var text = JsonSerializer.Serialize(
                    new
                    {
                        model = live.Name,
                        sweep = sweepResult.Kind,
                        metric = sweepResult.Metric,
                        clean = problem.Clean,
                        corrupted = problem.Corrupted,
                        answer = problem.Answer,
                        wrong = problem.Wrong,
                        cleanMetric = sweepResult.Clean,
                        corruptedMetric = sweepResult.Corrupted,
                        rows,
                    },
                    CliOutput.Numbers
                );
                File.WriteAllText(file.FullName + ".tmp", text);
                File.Move(file.FullName + ".tmp", file.FullName, overwrite: true);
                output.WriteLine($"wrote {file.FullName}");
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void PrintDla(TextWriter output, LiveModel live, DirectLogitAttribution dla)
    {
        output.WriteLine(
            $"{live.Name}: direct logit attribution to logit({dla.Answer}) − logit({dla.Wrong}) at the last position, "
                + $"through the final norm's frozen scale. Logit difference {dla.Actual:0.000}; the "
                + $"components sum to {dla.Total:0.000}."
        );
        output.WriteLine(
            $"  embedding {dla.Embedding:+0.000;-0.000; 0.000}"
                + (dla.AttentionBias.Any(b => b != 0) ? $"; o_proj biases {dla.AttentionBias.Sum():+0.000;-0.000}" : "")
        );
        var heads = dla.Heads.GetLength(1);
        output.WriteLine(
            $"    layer {string.Join(" ", Enumerable.Range(0, heads).Select(h => $"h{h}".PadLeft(7)))}     mlp"
        );
        for (var l = 0; l < dla.Heads.GetLength(0); l++)
        {
            var cells = Enumerable
                .Range(0, heads)
                .Select(h => dla.Heads[l, h].ToString("+0.000;-0.000; 0.000", CultureInfo.InvariantCulture).PadLeft(7));
            output.WriteLine(
                $"  {l + 1, 7} {string.Join(" ", cells)} "
                    + $"{dla.Mlp[l].ToString("+0.000;-0.000; 0.000", CultureInfo.InvariantCulture), 7}"
            );
        }
    }

    private static void Print(TextWriter output, LiveModel live, SweepResult sweep)
    {
        var values = sweep.Values;
        output.WriteLine(
            $"{live.Name}: {sweep.Kind}; {sweep.Metric}. Clean {sweep.Clean:0.000}"
                + (sweep.Corrupted != sweep.Clean ? $", corrupted {sweep.Corrupted:0.000}" : "")
        );
        var residual = sweep.Kind.StartsWith("residual", StringComparison.Ordinal);
        output.WriteLine(
            (residual ? "after layer" : "layer")
                + ": "
                + (values.GetLength(1) == 1 ? "value" : $"columns 0…{values.GetLength(1) - 1}")
        );
        for (var r = 0; r < values.GetLength(0); r++)
        {
            var label = residual ? (r == 0 ? "embedding" : r.ToString()) : (r + 1).ToString();
            var cells = Enumerable
                .Range(0, values.GetLength(1))
                .Select(c => values[r, c].ToString("+0.000;-0.000; 0.000", CultureInfo.InvariantCulture).PadLeft(7));
            output.WriteLine($"  {label, 9} {string.Join(" ", cells)}");
        }
    }
}
