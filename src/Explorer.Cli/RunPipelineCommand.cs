using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Pipeline;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;

namespace Explorer.Cli;

/// <summary><c>explorer profile</c> and <c>explorer run-pipeline</c>: measured unit costs, and a planned split run for
/// real.</summary>
public static class RunPipelineCommand
{
    private static ModelSpec Mini(string name) =>
        MiniPresets.TryGet(name, out var spec)
            ? spec
            : throw new ArgumentException(
                $"Unknown mini preset '{name}'. Use one of: {string.Join(", ", MiniPresets.All.Select(s => s.Name))}."
            );

    public static Command CreateProfile(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m") { DefaultValueFactory = _ => MiniPresets.DeepSeek7BMini.Name };
        var mbs = new Option<int>("--mbs") { Description = "Micro-batch size.", DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 64 };
        var command = new Command(
            "profile",
            "Time every unit of a live mini model (forward, backward) and print them as a --costs file for plan."
        )
        {
            model,
            mbs,
            seq,
        };
        CommandAction.Set(command, error, result =>
        {
            using var decoder = Decoder.Create(Mini(result.GetValue(model)!));
            var units = UnitProfiler.Profile(decoder, result.GetValue(mbs), result.GetValue(seq));
            output.WriteLine(
                JsonSerializer.Serialize(
                    units.Select(u => new
                    {
                        name = u.Name,
                        kind = u.Kind.ToString(),
                        forward = u.Forward,
                        inputGradient = u.InputGradient,
                        weightGradient = u.WeightGradient,
                        parameters = u.Parameters,
                        activationBytes = u.ActivationBytes,
                    }),
                    CliOutput.Document
                )
            );
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command CreateRun(TextWriter output, TextWriter error)
    {
        var model = new Option<string>("--model", "-m") { DefaultValueFactory = _ => MiniPresets.DeepSeek7BMini.Name };
        var stages = new Option<int>("--stages", "-p") { Required = true };
        var microbatches = new Option<int>("--microbatches") { DefaultValueFactory = _ => 8 };
        var schedule = new Option<string>("--schedule")
        {
            Description = "gpipe or 1f1b.",
            DefaultValueFactory = _ => "1f1b",
        };
        var method = new Option<string>("--method")
        {
            Description = "optimal or uniform.",
            DefaultValueFactory = _ => "optimal",
        };
        var mbs = new Option<int>("--mbs") { DefaultValueFactory = _ => 1 };
        var seq = new Option<int>("--seq") { DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json");
        var command = new Command(
            "run-pipeline",
            "Profile a mini model, plan a split, simulate it, then run one training step split for real and compare."
        )
        {
            model,
            stages,
            microbatches,
            schedule,
            method,
            mbs,
            seq,
            json,
        };
        CommandAction.Set(command, error, result =>
            Run(
                new RunRequest(
                    Mini(result.GetValue(model)!),
                    result.GetValue(schedule)!,
                    result.GetValue(method) == "uniform" ? PartitionMethod.Uniform : PartitionMethod.Optimal,
                    result.GetValue(stages),
                    result.GetValue(microbatches),
                    result.GetValue(mbs),
                    result.GetValue(seq),
                    result.GetValue(json)
                ),
                output
            )
        );
        return command;
    }

    /// <summary>What <c>explorer run-pipeline</c> was asked to run.</summary>
    private sealed record RunRequest(
        ModelSpec Spec,
        string Schedule,
        PartitionMethod Method,
        int Stages,
        int MicroBatches,
        int MicroBatchSize,
        int SequenceLength,
        bool Json
    );

    private static int Run(RunRequest request, TextWriter output)
    {
        var kind = ScheduleNames.Parse(request.Schedule);
        if (kind is not (ScheduleKind.GPipe or ScheduleKind.OneFOneB))
            throw new ArgumentException($"--schedule {request.Schedule}: running for real supports gpipe and 1f1b.");
        var (spec, p, m, b, s) = (
            request.Spec,
            request.Stages,
            request.MicroBatches,
            request.MicroBatchSize,
            request.SequenceLength
        );
        using var decoder = Decoder.Create(spec);
        using var tokenizer = MiniTokenizer.Create();
        var corpus = new BuiltInCorpus(tokenizer);
        var (report, handOffMs) = Plan(decoder, corpus, request, kind);
        var measured = Measure(decoder, corpus, report, kind, m, b, s);
        Write(request, kind, report, handOffMs, measured, output);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Costs measured under the run's own threading (each stage's share of the cores), scaled to a one-stage run of
    /// the same code, with the measured hand-off between stage threads; then the split planned on them.
    /// </summary>
    private static (PlanReport Report, double HandOffMs) Plan(
        Decoder decoder,
        BuiltInCorpus corpus,
        RunRequest request,
        ScheduleKind kind
    )
    {
        var (b, s) = (request.MicroBatchSize, request.SequenceLength);
        var (units, handOffMs) = UnitProfiler.ProfileForRun(decoder, b, s, request.Stages, kind, sequences =>
            corpus.Batch(new Random(7), sequences, s)
        );
        var outcome = PipelinePlanner.Plan(
            new PlanRequest
            {
                Units = units,
                Stages = request.Stages,
                MicroBatches = request.MicroBatches,
                Schedule = kind,
                Method = request.Method,
                Uniform = new UniformPartitioner(AccountForEmbedding: true, AccountForLoss: true),
                TokensPerMicroBatch = (long)b * s,
                TransferMs = handOffMs,
            }
        );
        return (outcome.Report ?? throw new ArgumentException(outcome.Refusal), handOffMs);
    }

    /// <summary>One step to warm, then the median of three: this machine's speed drifts between runs.</summary>
    private static PipelineRunResult Measure(
        Decoder decoder,
        BuiltInCorpus corpus,
        PlanReport report,
        ScheduleKind kind,
        int m,
        int b,
        int s
    )
    {
        var batch = corpus.Batch(new Random(3), m * b, s);
        decoder.train();
        var firstUnits = report.Plan.Stages.Select(x => x.FirstUnit).ToArray();
        PipelineRun.TrainStep(decoder, batch, firstUnits, kind, m);
        return Enumerable
            .Range(0, 3)
            .Select(_ => PipelineRun.TrainStep(decoder, batch, firstUnits, kind, m))
            .OrderBy(r => r.MakespanMs)
            .ElementAt(1);
    }

    private static void Write(
        RunRequest request,
        ScheduleKind kind,
        PlanReport report,
        double handOffMs,
        PipelineRunResult measured,
        TextWriter output
    )
    {
        var (spec, p, m) = (request.Spec, request.Stages, request.MicroBatches);
        var measuredBubble = SimulationResult.Measured(kind, measured.Timeline, measured.MakespanMs).BubbleFraction;
        // The simulator gives every stage a device of its own; with more stages than cores they time-share,
        // which it does not model: no prediction rather than a wrong one.
        var cores = Environment.ProcessorCount;
        double MedianOp(int stage, OpKind opKind)
        {
            var times = measured
                .Timeline.Where(o => o.Device == stage && o.Kind == opKind)
                .Select(o => o.End - o.Start)
                .Order()
                .ToArray();
            return times.Length == 0 ? 0 : times[times.Length / 2];
        }
        var perStage = report
            .Plan.Stages.Select(x => new
            {
                stage = x.Index,
                firstUnit = x.FirstUnit,
                lastUnit = x.LastUnit,
                predictedForwardMs = x.Forward,
                measuredForwardMs = MedianOp(x.Index, OpKind.Forward),
                predictedBackwardMs = x.InputGradient + x.WeightGradient,
                measuredBackwardMs = MedianOp(x.Index, OpKind.Backward),
            })
            .ToArray();
        var predicts = p <= cores;
        double? error_ = predicts
            ? (measured.MakespanMs - report.Simulation.Makespan) / report.Simulation.Makespan
            : null;
        if (request.Json)
            output.WriteLine(
                JsonSerializer.Serialize(
                    new
                    {
                        model = spec.Name,
                        stages = p,
                        microBatches = m,
                        schedule = ScheduleNames.Name(kind),
                        cores,
                        threadsPerStage = PipelineRun.ThreadsPerStage(p),
                        handOffMs,
                        boundaries = report.Plan.Boundaries,
                        predictedMakespan = predicts ? report.Simulation.Makespan : (double?)null,
                        measuredMakespan = measured.MakespanMs,
                        makespanError = error_,
                        predictedBubble = predicts ? report.Simulation.BubbleFraction : (double?)null,
                        measuredBubble,
                        loss = measured.Loss,
                        stagesMs = perStage,
                        timeline = measured.Timeline.Select(o => new
                        {
                            o.Device,
                            o.MicroBatch,
                            kind = o.Kind.ToString(),
                            o.Start,
                            o.End,
                        }),
                        noPrediction = predicts
                            ? null
                            : $"{p} stages share {cores} cores; the simulator gives each stage a "
                                + "device of its own, so it cannot predict this run.",
                    },
                    CliOutput.Document
                )
            );
        else if (predicts)
            output.WriteLine(
                $"{spec.Name}, {report.Plan.Method} split at units "
                    + $"[{string.Join(", ", report.Plan.Boundaries)}], {ScheduleNames.Name(kind)}, p = "
                    + $"{p}, m = {m}: "
                    + $"predicted {report.Simulation.Makespan:0.0} ms (bubble "
                    + $"{report.Simulation.BubbleFraction:P1}), measured {measured.MakespanMs:0.0} "
                    + "ms "
                    + $"(bubble {measuredBubble:P1}); simulator error {error_:+0.0%;-0.0%}; loss "
                    + $"{measured.Loss:0.0000}"
            );
        else
            output.WriteLine(
                $"{spec.Name}, {report.Plan.Method} split at units "
                    + $"[{string.Join(", ", report.Plan.Boundaries)}], {ScheduleNames.Name(kind)}, p = "
                    + $"{p}, m = {m}: "
                    + $"measured {measured.MakespanMs:0.0} ms (bubble {measuredBubble:P1}); loss "
                    + $"{measured.Loss:0.0000}. No prediction: {p} stages share {cores} cores, "
                    + "and the simulator gives each stage a device of its own."
            );
    }
}
