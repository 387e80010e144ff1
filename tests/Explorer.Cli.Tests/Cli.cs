using Explorer.Cli;

namespace Explorer.Cli.Tests;

/// <summary>Runs the `explorer` command in process and captures what it prints.</summary>
internal static class Cli
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = ExplorerCommand.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
