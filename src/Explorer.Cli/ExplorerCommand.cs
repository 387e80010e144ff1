using System.CommandLine;

namespace Explorer.Cli;

/// <summary>The <c>explorer</c> command line: parses, dispatches, and maps every user error to exit code 2.</summary>
public static class ExplorerCommand
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // malloc settings for libtorch's temporaries, before the first model: here, so that a command run in-process
        // (the benchmark report, the tests) runs as `explorer` does (without them the attention path ran 4–6× slower
        // there).
        Explorer.Model.Hosting.ProcessMemory.Configure();
        var root = new RootCommand(
            "Explorer: exact architecture accounting and pipeline planning for LLaMA-family decoders."
        );
        root.Subcommands.Add(SpecsCommand.Create(output, error));
        root.Subcommands.Add(ForwardCommand.Create(output, error));
        root.Subcommands.Add(BenchCommand.Create(output, error));
        root.Subcommands.Add(PlanCommand.CreatePlan(output, error));
        root.Subcommands.Add(PlanCommand.CreateSimulate(output, error));
        root.Subcommands.Add(PlanCommand.CreateExport(output, error));
        root.Subcommands.Add(ParallelCommand.Create(output, error));
        root.Subcommands.Add(TrainCommand.Create(output, error));
        root.Subcommands.Add(TrainDefaultsCommand.Create(output, error));
        root.Subcommands.Add(ProbeCommand.Create(output, error));
        root.Subcommands.Add(PatchCommand.Create(output, error));
        root.Subcommands.Add(MakeCheckpointCommand.Create(output, error));
        root.Subcommands.Add(RunPipelineCommand.CreateProfile(output, error));
        root.Subcommands.Add(RunPipelineCommand.CreateRun(output, error));

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
                error.WriteLine($"error: {e.Message}");
            error.WriteLine("Run 'explorer --help' for usage.");
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
