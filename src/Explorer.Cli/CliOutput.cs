using System.Text.Json;
using System.Text.Json.Serialization;
using Spectre.Console;

namespace Explorer.Cli;

/// <summary>
/// How <c>explorer</c> writes: tables through a plain Spectre console (no colour or control codes, so output pipes
/// and diffs cleanly) at a width that fits the table, and JSON in three shapes.
/// </summary>
internal static class CliOutput
{
    public static IAnsiConsole Console(TextWriter writer, int width)
    {
        var console = AnsiConsole.Create(
            new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(writer),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            }
        );
        console.Profile.Width = width;
        return console;
    }

    /// <summary>A command's JSON document on standard output: camelCase, indented.</summary>
    public static readonly JsonSerializerOptions Document = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
    };

    /// <summary>A benchmark's JSON report: its records' own property names, indented.</summary>
    public static readonly JsonSerializerOptions Report = new() { WriteIndented = true };

    /// <summary>A dump of numbers that may be infinite or NaN (logits, metrics), written as JSON allows them.</summary>
    public static readonly JsonSerializerOptions Numbers = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
