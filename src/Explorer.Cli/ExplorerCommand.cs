using System.CommandLine;

namespace Explorer.Cli;

/// <summary>The <c>explorer</c> command line: parses, dispatches, and maps every user error to exit code 2.</summary>
public static class ExplorerCommand
{
    /// <summary>The verbs by what a user does with them, in the order <c>explorer --help</c> lists them.</summary>
    public static readonly IReadOnlyList<(string Group, string[] Verbs)> Groups =
    [
        ("explore", ["specs", "forward", "probe", "patch"]),
        ("plan", ["plan", "simulate", "export", "parallel", "profile", "run-pipeline"]),
        ("checkpoints", ["make-checkpoint", "train", "train-defaults"]),
        ("bench", ["bench"]),
    ];

    public static RootCommand Create(TextWriter output, TextWriter error)
    {
        Command[] commands =
        [
            SpecsCommand.Create(output, error),
            ForwardCommand.Create(output, error),
            ProbeCommand.Create(output, error),
            PatchCommand.Create(output, error),
            PlanCommand.CreatePlan(output, error),
            PlanCommand.CreateSimulate(output, error),
            PlanCommand.CreateExport(output, error),
            ParallelCommand.Create(output, error),
            RunPipelineCommand.CreateProfile(output, error),
            RunPipelineCommand.CreateRun(output, error),
            MakeCheckpointCommand.Create(output, error),
            TrainCommand.Create(output, error),
            TrainDefaultsCommand.Create(output, error),
            BenchCommand.Create(output, error),
        ];
        var groups = string.Join("\n", Groups.Select(g => $"  {g.Group, -12} {string.Join(", ", g.Verbs)}"));
        var root = new RootCommand(
            "Explorer: look inside decoder LLMs and plan how to split their training over GPUs.\n\n"
                + $"Verbs by what they do:\n{groups}"
        );
        foreach (var command in commands)
            root.Subcommands.Add(command);
        return root;
    }

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // malloc settings for libtorch's temporaries, before the first model: here, so that a command run in-process
        // (the benchmark report, the tests) runs as `explorer` does, its temporaries reused rather than mapped afresh.
        Explorer.Model.Hosting.ProcessMemory.Configure();
        var root = Create(output, error);
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
