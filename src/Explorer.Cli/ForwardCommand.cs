using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Formatting;
using Explorer.Model;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;
using Spectre.Console;

namespace Explorer.Cli;

/// <summary><c>explorer forward</c>: one forward pass; the top next-token predictions, and optionally a JSON
/// dump.</summary>
public static class ForwardCommand
{
    public const int DefaultMaxTokens = 4096;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description =
                "A runnable preset: deepseek-7b-mini or deepseek-67b-mini (the trained weights that "
                + "ship with the app; seeded ones in a build without them).",
        };
        var weights = new Option<string>("--weights", "-w")
        {
            Description = "A Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json).",
        };
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to tokenize." };
        var tokens = new Option<string>("--tokens", "-t") { Description = "Token ids, comma-separated (e.g. 1,2,3)." };
        var top = new Option<int>("--top", "-k")
        {
            Description = "How many predictions to print.",
            DefaultValueFactory = _ => 10,
        };
        var dump = new Option<FileInfo>("--dump")
        {
            Description = "Write tokens, last-position logits and per-layer hidden norms as JSON.",
        };
        var device = new Option<string>("--device")
        {
            Description = "auto, cpu or cuda.",
            DefaultValueFactory = _ => "auto",
        };
        var ablate = new Option<string>("--ablate")
        {
            Description =
                "Zero query heads' outputs before o_proj: LAYER.HEAD[,…], layers 1…L, heads 0…H−1 (e.g. 3.1,7.0).",
        };
        var skip = new Option<string>("--skip")
        {
            Description = "Skip layers (each one's output is its input): LAYER[,…], 1…L.",
        };
        var patch = new Option<string>("--patch")
        {
            Description =
                "Replace the residual after layer L (0: the embedding) at position T by the --source run's: L:T[,…].",
        };
        var source = new Option<string>("--source")
        {
            Description = "Token ids of the source run for --patch, comma-separated, as long as the prompt.",
        };
        var stream = new Option<bool>("--stream")
        {
            Description =
                "Read the checkpoint's layers from its files as the forward reaches them (two in "
                + "memory): for a model larger than this machine's memory. CPU; needs --weights.",
        };

        var command = new Command("forward", "Run one forward pass and print the next-token predictions.")
        {
            model,
            weights,
            prompt,
            tokens,
            top,
            dump,
            device,
            stream,
            ablate,
            skip,
            patch,
            source,
        };
        CommandAction.Set(command, error, result =>
        {
            return Run(
                result.GetValue(model),
                result.GetValue(weights),
                result.GetValue(prompt),
                result.GetValue(tokens),
                result.GetValue(top),
                result.GetValue(dump),
                result.GetValue(device)!,
                result.GetValue(stream),
                output,
                error,
                (result.GetValue(ablate), result.GetValue(skip), result.GetValue(patch), result.GetValue(source))
            );
        });
        return command;
    }

    private static int Run(
        string? modelName,
        string? weights,
        string? prompt,
        string? tokenList,
        int top,
        FileInfo? dump,
        string device,
        bool stream,
        TextWriter output,
        TextWriter error,
        (string? Ablate, string? Skip, string? Patch, string? Source) edits = default
    )
    {
        if ((prompt is null) == (tokenList is null))
            throw new ArgumentException("Give exactly one of --prompt TEXT or --tokens 1,2,3.");
        if (top < 1)
            throw new ArgumentException($"--top {top}: give at least 1.");
        using var live = ModelArguments.Open(modelName, weights, device, stream, error);
        var ids = prompt is not null ? live.Encode(prompt, DefaultMaxTokens) : ParseTokens(tokenList!);
        live.CheckTokens(ids, DefaultMaxTokens);

        var interventions = InterventionArguments.Parse(live, ids, edits.Ablate, edits.Skip, edits.Patch, edits.Source);
        using var input = LiveModel.ToTensor(ids);
        using var trace = live.Decoder.Trace(
            input,
            new TraceOptions
            {
                Residual = true,
                Attention = false,
                LogitLens = false,
            },
            interventions: interventions.IsEmpty ? null : interventions
        );
        var logits = trace.LastLogits();
        var probabilities = Softmax(logits);
        var ranked = Enumerable
            .Range(0, logits.Length)
            .OrderByDescending(i => logits[i])
            .Take(Math.Min(top, logits.Length))
            .ToArray();

        var console = CliOutput.Console(output, 100);
        var pieces = live.Tokenizer is null
            ? ids.Select(TokenPieces.NoToken).ToArray()
            : TokenPieces.Display(live.Tokenizer, ids);
        output.WriteLine(
            $"{live.Name} ({live.Source}), {ids.Length} tokens"
                + (live.Tokenizer is null ? "" : ": " + string.Join(" | ", pieces))
        );
        var applied = Describe(edits);
        if (applied.Length > 0)
            output.WriteLine($"interventions: {applied}");
        var table = new Table().Border(TableBorder.Simple);
        table
            .AddColumn("rank")
            .AddColumn(new TableColumn("id").RightAligned())
            .AddColumn("token")
            .AddColumn(new TableColumn("probability").RightAligned())
            .AddColumn(new TableColumn("logit").RightAligned());
        for (var r = 0; r < ranked.Length; r++)
        {
            var id = ranked[r];
            var piece = TokenPieces.Display(live.Tokenizer, id);
            table.AddRow(
                (r + 1).ToString(),
                id.ToString(),
                Markup.Escape(piece),
                probabilities[id].ToString("0.0000"),
                logits[id].ToString("0.000")
            );
        }
        console.Write(table);

        if (dump is not null)
        {
            var norms = trace.ResidualNorm!;
            var hidden = Enumerable
                .Range(1, trace.Layers)
                .Select(l => Enumerable.Range(0, trace.Length).Select(t => norms[l, t]).ToArray())
                .ToArray();
            // A model can emit ±Inf or NaN; JSON has no literal for them, so they are written as "Infinity",
            // "-Infinity", "NaN".
            var json = JsonSerializer.Serialize(
                new
                {
                    model = live.Name,
                    tokens = ids,
                    pieces,
                    interventions = applied,
                    logits,
                    hiddenNorms = hidden,
                },
                CliOutput.Numbers
            );
            var temporary = dump.FullName + ".tmp";
            File.WriteAllText(temporary, json);
            File.Move(temporary, dump.FullName, overwrite: true);
            output.WriteLine($"wrote {dump.FullName} ({Units.Bytes(new FileInfo(dump.FullName).Length)})");
        }
        return ExitCodes.Ok;
    }

    private static string Describe((string? Ablate, string? Skip, string? Patch, string? Source) edits) =>
        string.Join(
            "; ",
            new[]
            {
                edits.Ablate is null ? null : $"ablate {edits.Ablate}",
                edits.Skip is null ? null : $"skip {edits.Skip}",
                edits.Patch is null ? null : $"patch {edits.Patch} from {edits.Source}",
            }.Where(e => e is not null)
        );

    public static int[] ParseTokens(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]))
                throw new ArgumentException(
                    $"--tokens: '{parts[i]}' is not a token id; give whole numbers separated by commas."
                );
        return ids;
    }

    private static double[] Softmax(float[] logits)
    {
        var max = logits.Max();
        var e = logits.Select(v => Math.Exp(v - max)).ToArray();
        var sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }
}
