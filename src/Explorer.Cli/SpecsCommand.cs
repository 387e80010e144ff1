using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Cli;

/// <summary><c>explorer specs</c>: the Architecture page's analysis as a table or JSON.</summary>
public static class SpecsCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m")
        {
            Description = $"A preset: {string.Join(", ", ModelPresets.Names)}.",
        };
        var config = new Option<FileInfo>("--config", "-c")
        {
            Description = "A Hugging Face config.json (LlamaForCausalLM) to analyse instead of a preset.",
        };
        var seq = new Option<int?>("--seq", "-s")
        {
            Description = "Sequence length for FLOPs, KV cache and activations (default: the model's context length).",
        };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };

        var command = new Command("specs", "Exact parameters, FLOPs and memory of a decoder.")
        {
            model,
            config,
            seq,
            json,
        };
        CommandAction.Set(command, error, result =>
        {
            var spec = Resolve(result.GetValue(model), result.GetValue(config), error);
            if (spec is null)
                return ExitCodes.BadInput;
            var length = result.GetValue(seq) ?? spec.ContextLength;
            if (length < 1 || length > SpecValidator.MaxContextLength)
            {
                error.WriteLine(
                    $"error: --seq {length} is out of range; use 1 to {SpecValidator.MaxContextLength:N0}."
                );
                return ExitCodes.BadInput;
            }
            var report = ArchitectureReport.Create(spec, length);
            if (result.GetValue(json))
                output.WriteLine(JsonSerializer.Serialize(SpecsDocument.From(report), CliOutput.Document));
            else
                SpecsTable.Write(report, output);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static ModelSpec? Resolve(string? name, FileInfo? config, TextWriter error)
    {
        if (config is not null)
        {
            var read = HfConfigReader.ReadFile(config.FullName);
            foreach (var warning in read.Warnings)
                error.WriteLine($"warning: {warning}");
            if (!read.Succeeded)
            {
                error.WriteLine($"error: cannot use {config.FullName}:");
                foreach (var e in read.Errors)
                    error.WriteLine($"  {e}");
                return null;
            }
            return string.IsNullOrWhiteSpace(name) ? read.Spec : read.Spec! with { Name = name };
        }
        if (string.IsNullOrWhiteSpace(name))
        {
            error.WriteLine($"error: give --model NAME ({string.Join(", ", ModelPresets.Names)}) or --config FILE.");
            return null;
        }
        if (!ModelPresets.TryGet(name, out var spec))
        {
            error.WriteLine($"error: unknown model '{name}'. Known models: {string.Join(", ", ModelPresets.Names)}.");
            return null;
        }
        return spec;
    }
}
