using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Accounting;
using Explorer.Core.Formatting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Spectre.Console;

namespace Explorer.Cli;

/// <summary><c>explorer plan</c>, <c>explorer simulate</c> and <c>explorer export</c>: the pipeline planner on the
/// command line.</summary>
public static class PlanCommand
{
    private static PlanReport Plan(PlanRequest request)
    {
        var outcome = PipelinePlanner.Plan(request);
        return outcome.Report ?? throw new ArgumentException(outcome.Refusal);
    }

    public static Command CreatePlan(TextWriter output, TextWriter error)
    {
        var arguments = new PlanArguments();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("plan", "Split a model into pipeline stages and simulate the schedule.");
        arguments.AddTo(command);
        command.Options.Add(json);
        command.SetAction(result => CommandAction.Guard(error, () =>
            {
                var report = Plan(arguments.Request(result));
                if (result.GetValue(json))
                    output.WriteLine(JsonSerializer.Serialize(Document(report), CliOutput.Document));
                else
                    WriteTable(report, output);
                return ExitCodes.Ok;
            }));
        return command;
    }

    public static object Document(PlanReport r) =>
        new
        {
            method = r.Plan.Method,
            schedule = ScheduleNames.Name(r.Request.Schedule),
            devices = r.Request.Stages,
            microBatches = r.Request.MicroBatches,
            virtualStages = r.Request.VirtualStages,
            stages = r.Plan.Stages.Select(s => new
            {
                index = s.Index,
                device = r.DeviceOf(s.Index),
                firstUnit = s.FirstUnit,
                lastUnit = s.LastUnit,
                firstName = r.Plan.Units[s.FirstUnit].Name,
                lastName = r.Plan.Units[s.LastUnit].Name,
                time = s.Time,
                forward = s.Forward,
                inputGradient = s.InputGradient,
                weightGradient = s.WeightGradient,
                parameters = s.Parameters,
                activationBytes = s.ActivationBytes,
            }),
            maxStageTime = r.Plan.MaxStageTime,
            imbalance = r.Plan.Imbalance,
            makespan = r.Simulation.Makespan,
            bubbleFraction = r.Simulation.BubbleFraction,
            tokensPerSecond = r.TokensPerSecond,
            memory = r.Memory.Select(m => new
            {
                device = m.Device,
                stateBytes = m.StateBytes,
                peakActivationBytes = m.PeakActivationBytes,
                totalBytes = m.TotalBytes,
                peakInFlight = m.PeakInFlight,
            }),
            warnings = r.Warnings,
        };

    private static void WriteTable(PlanReport r, TextWriter output)
    {
        var console = CliOutput.Console(output, 130);
        var table = new Table()
            .Border(TableBorder.Simple)
            .Title(
                $"{r.Plan.Method} split, {ScheduleNames.Name(r.Request.Schedule)}, p = "
                    + $"{r.Request.Stages}, m = {r.Request.MicroBatches}"
            );
        foreach (var c in new[] { "stage", "device", "units", "first", "last", "time ms", "parameters", "memory" })
            table.AddColumn(new TableColumn(c));
        foreach (var s in r.Plan.Stages)
        {
            var device = r.DeviceOf(s.Index);
            table.AddRow(
                s.Index.ToString(),
                device.ToString(),
                s.UnitCount.ToString(),
                Markup.Escape(r.Plan.Units[s.FirstUnit].Name),
                Markup.Escape(r.Plan.Units[s.LastUnit].Name),
                s.Time.ToString("0.000"),
                Units.Count(s.Parameters),
                Units.Bytes(r.Memory[device].TotalBytes)
            );
        }
        console.Write(table);
        output.WriteLine(
            $"slowest stage {r.Plan.MaxStageTime:0.000} ms ({Units.Ratio(r.Plan.Imbalance)}× the mean); "
                + $"step {r.Simulation.Makespan:0.0} ms; bubble {r.Simulation.BubbleFraction:P1}; "
                + $"{r.TokensPerSecond:N0} tokens/s"
        );
        foreach (var w in r.Warnings)
            output.WriteLine($"warning: {w}");
    }

    public static Command CreateSimulate(TextWriter output, TextWriter error)
    {
        var stages = new Option<int>("--stages", "-p") { Description = "Devices.", Required = true };
        var microbatches = new Option<int>("--microbatches") { Description = "Micro-batches.", Required = true };
        var schedule = new Option<string>("--schedule")
        {
            Description = "gpipe, 1f1b, interleaved, zb-h1, interleaved-zb, zbv, dualpipev or dualpipe.",
            DefaultValueFactory = _ => "1f1b",
        };
        var forward = new Option<double>("--forward")
        {
            Description = "Forward time of a stage, per micro-batch.",
            DefaultValueFactory = _ => 1,
        };
        var backward = new Option<double>("--backward")
        {
            Description = "Input-gradient (B) time.",
            DefaultValueFactory = _ => 1,
        };
        var weight = new Option<double>("--weight")
        {
            Description = "Weight-gradient (W) time.",
            DefaultValueFactory = _ => 1,
        };
        var virtualStages = new Option<int>("--virtual")
        {
            Description =
                "Chunks per device (interleaved, interleaved-zb); each gets 1/v of the times (the V "
                + "schedules: 2 chunks of half).",
            DefaultValueFactory = _ => 1,
        };
        var transfer = new Option<double>("--transfer")
        {
            Description = "Transfer time between devices.",
            DefaultValueFactory = _ => 0,
        };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("simulate", "Simulate a pipeline schedule with equal stages.")
        {
            stages,
            microbatches,
            schedule,
            forward,
            backward,
            weight,
            virtualStages,
            transfer,
            json,
        };
        command.SetAction(result => CommandAction.Guard(error, () =>
            {
                int p = result.GetValue(stages),
                    v = result.GetValue(virtualStages);
                if (p < 1)
                    throw new ArgumentException($"--stages {p}: use at least 1.");
                var kind = ScheduleNames.Parse(result.GetValue(schedule)!);
                if (v < 1)
                    throw new ArgumentException($"--virtual {v}: use at least 1.");
                // A device's times split over its chunks: v interleaved, the V's two; DualPipe's stages are whole
                // shares.
                var stageCount = SchedulePlacement.Stages(kind, p, v);
                var share = kind == ScheduleKind.DualPipe ? 1 : stageCount / (double)p;
                var times = Enumerable
                    .Repeat(
                        new StageTimes(
                            result.GetValue(forward) / share,
                            result.GetValue(backward) / share,
                            result.GetValue(weight) / share
                        ),
                        stageCount
                    )
                    .ToArray();
                var sim = ScheduleSimulator.Simulate(
                    kind,
                    times,
                    result.GetValue(microbatches),
                    v,
                    result.GetValue(transfer)
                );
                if (result.GetValue(json))
                    output.WriteLine(
                        JsonSerializer.Serialize(
                            new
                            {
                                schedule = ScheduleNames.Name(kind),
                                devices = p,
                                microBatches = sim.MicroBatches,
                                makespan = sim.Makespan,
                                bubbleFraction = sim.BubbleFraction,
                                peakInFlight = sim.PeakInFlight,
                                busyTime = sim.BusyTime,
                            },
                            CliOutput.Document
                        )
                    );
                else
                    output.WriteLine(
                        $"{ScheduleNames.Name(kind)}, p = {p}, m = {sim.MicroBatches}: makespan "
                            + $"{sim.Makespan:0.###}, bubble {sim.BubbleFraction:P2}, peak in flight per device "
                            + $"[{string.Join(", ", sim.PeakInFlight)}]"
                    );
                return ExitCodes.Ok;
            }));
        return command;
    }

    public static Command CreateExport(TextWriter output, TextWriter error)
    {
        var arguments = new PlanArguments();
        var format = new Option<string>("--format")
        {
            Description = "megatron, deepspeed, torchtitan or json.",
            Required = true,
        };
        var tp = new Option<int?>("--tp")
        {
            Description =
                "Tensor parallel t of the run the export describes (any of --tp, --cp, --dp, "
                + "--global-batch, --zero, --recompute, --sequence-parallel adds the parallel "
                + "configuration).",
        };
        var cp = new Option<int?>("--cp")
        {
            Description =
                "Context parallel c: each sequence split over c GPUs (Megatron-LM's "
                + "--context-parallel-size, torchtitan's context_parallel_degree).",
        };
        var dp = new Option<int?>("--dp") { Description = "Data parallel d." };
        var globalBatch = new Option<int?>("--global-batch")
        {
            Description = "Sequences per step (default: microbatches · d · mbs).",
        };
        var zero = new Option<int?>("--zero") { Description = "ZeRO stage 0-3 (1 = distributed optimizer)." };
        var recompute = new Option<string>("--recompute") { Description = "none, selective or full." };
        var sp = new Option<bool>("--sequence-parallel") { Description = "Sequence parallelism (t > 1)." };
        var overlapGrad = new Option<bool>("--overlap-grad-reduce")
        {
            Description = "Reduce gradients behind the backward.",
        };
        var overlapParam = new Option<bool>("--overlap-param-gather")
        {
            Description = "Gather the updated weights behind the next forward (with --overlap-grad-reduce, ZeRO-1).",
        };
        var overlapTp = new Option<bool>("--tp-comm-overlap")
        {
            Description = "Pipeline the tensor-parallel collectives with their GEMMs (with --sequence-parallel).",
        };
        var attention = new Option<string>("--attention-backend")
        {
            Description = "flash (default: a fused causal kernel) or unfused (s × s matmuls, scores kept).",
        };
        var command = new Command(
            "export",
            "Plan, then write the plan for Megatron-LM, DeepSpeed, torchtitan or as Explorer JSON."
        );
        arguments.AddTo(command);
        foreach (
            var option in new Option[]
            {
                format,
                tp,
                cp,
                dp,
                globalBatch,
                zero,
                recompute,
                sp,
                overlapGrad,
                overlapParam,
                overlapTp,
                attention,
            }
        )
            command.Options.Add(option);
        command.SetAction(result => CommandAction.Guard(error, () =>
            {
                var request = arguments.Request(result);
                ParallelConfig? parallel = null;
                if (
                    result.GetValue(tp) is not null
                    || result.GetValue(cp) is not null
                    || result.GetValue(dp) is not null
                    || result.GetValue(globalBatch) is not null
                    || result.GetValue(zero) is not null
                    || result.GetValue(recompute) is not null
                    || result.GetValue(sp)
                    || result.GetValue(overlapGrad)
                    || result.GetValue(overlapParam)
                    || result.GetValue(overlapTp)
                    || result.GetValue(attention) is not null
                )
                {
                    int t = result.GetValue(tp) ?? 1,
                        c = result.GetValue(cp) ?? 1,
                        d = result.GetValue(dp) ?? 1,
                        b = arguments.MicroBatchSize(result);
                    parallel = new ParallelConfig
                    {
                        Tensor = t,
                        Context = c,
                        Pipeline = request.Stages,
                        Data = d,
                        MicroBatch = b,
                        VirtualStages = PlanExports.ParallelChunks(request.Schedule, request.VirtualStages),
                        Schedule = request.Schedule,
                        GlobalBatch = result.GetValue(globalBatch) ?? request.MicroBatches * d * b,
                        SequenceParallel = result.GetValue(sp),
                        Zero = result.GetValue(zero) ?? 1,
                        Recompute = result.GetValue(recompute) is { } r
                            ? ParallelConfig.ParseRecompute(r)
                            : Recomputation.None,
                        Overlap = new CommOverlap(
                            result.GetValue(overlapGrad),
                            result.GetValue(overlapParam),
                            result.GetValue(overlapTp)
                        ),
                        FlashAttention =
                            result.GetValue(attention) is not { } backend
                            || ParallelConfig.ParseAttentionBackend(backend),
                    };
                    if (ParallelRules.Overlap(parallel) is { } broken)
                        throw new ArgumentException(broken);
                    foreach (var (name, value) in new[] { ("--tp", t), ("--cp", c), ("--dp", d) })
                        if (value < 1)
                            throw new ArgumentException($"{name} {value}: use at least 1.");
                }
                var export = PlanExports.Export(Plan(request), result.GetValue(format)!, parallel);
                if (!export.Succeeded)
                {
                    error.WriteLine($"error: {export.Refusal}");
                    return ExitCodes.BadInput;
                }
                output.WriteLine(export.Text);
                return ExitCodes.Ok;
            }));
        return command;
    }
}
