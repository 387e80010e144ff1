using System.CommandLine;
using Explorer.Model.Training;
using Explorer.Model.Weights;

namespace Explorer.Cli;

/// <summary><c>explorer probe</c>: the induction probe's best heads (random tokens repeated twice).</summary>
public static class ProbeCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description =
                "A mini preset (the trained weights that ship with the app; seeded ones in a build without them).",
        };
        var weights = new Option<string>("--weights", "-w") { Description = "A checkpoint folder." };
        var n = new Option<int>("--n")
        {
            Description = "Length of the random segment (it is repeated once).",
            DefaultValueFactory = _ => 32,
        };
        var top = new Option<int>("--top") { DefaultValueFactory = _ => 5 };
        var command = new Command(
            "probe",
            "Score every head on the induction probe: induction and previous-token scores."
        )
        {
            model,
            weights,
            n,
            top,
        };
        CommandAction.Set(command, error, result =>
        {
            if (result.GetValue(n) is < 2 or > 256)
                throw new ArgumentException($"--n {result.GetValue(n)}: use 2 to 256.");
            using var live = ModelArguments.Open(
                result.GetValue(model),
                result.GetValue(weights),
                "cpu",
                warnings: error
            );
            var scores = AttentionProbe.Measure(live.Decoder, result.GetValue(n));
            output.WriteLine($"{live.Name} ({live.Source}): induction probe of 2 × {result.GetValue(n)} random tokens");
            foreach (
                var (title, pick) in new (string, Func<HeadScore, double>)[]
                {
                    ("induction", s => s.Induction),
                    ("previous-token", s => s.PreviousToken),
                }
            )
            {
                output.WriteLine($"best {title} heads:");
                foreach (var s in scores.OrderByDescending(pick).Take(result.GetValue(top)))
                    output.WriteLine(
                        $"  layer {s.Layer + 1, 3} head {s.Head, 2}: induction {s.Induction:0.000}, "
                            + $"previous-token {s.PreviousToken:0.000}"
                    );
            }
            if (live.Tokenizer is { } tokenizer)
            {
                var accuracy = SentenceProbe.Measure(live.Decoder, tokenizer);
                output.WriteLine(
                    $"held-out template sentences ({accuracy.Predictions} predictions): lens top-1 "
                        + $"= next token at the last layer {accuracy.Final:P1}; "
                        + $"by layer {string.Join(" ", accuracy.ByLayer.Select(a => a.ToString("0.00")))}"
                );
            }
            return ExitCodes.Ok;
        });
        return command;
    }
}
