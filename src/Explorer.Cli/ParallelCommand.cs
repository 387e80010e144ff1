using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Formatting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Spectre.Console;

namespace Explorer.Cli;

/// <summary><c>explorer parallel</c>: one tensor × pipeline × data configuration predicted, or all of them searched and
/// ranked.</summary>
public static class ParallelCommand
{
    /// <summary>Rows the table prints (JSON has every fitting configuration).</summary>
    public const int TableRows = 20;

    public static Command Create(TextWriter output, TextWriter error)
    {
        var arguments = new ParallelArguments();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command(
            "parallel",
            "Predict step time and memory per GPU of a tensor × context × pipeline × data configuration "
                + "(--tp/--cp/--pp/--dp), or, without them, search every t, c, p, d, v, micro-batch, schedule, "
                + "SP, recomputation and ZeRO stage."
        );
        arguments.AddTo(command);
        command.Options.Add(json);
        CommandAction.Set(command, error, result =>
        {
            var spec = arguments.Spec(result);
            var cluster = arguments.Cluster(result);
            var seq = arguments.Sequence(result);
            if (arguments.IsSingle(result))
            {
                var estimate = ParallelEstimator.Estimate(spec, seq, cluster, arguments.Config(result));
                if (result.GetValue(json))
                    output.WriteLine(JsonSerializer.Serialize(Document(estimate), CliOutput.Document));
                else
                    WriteOne(estimate, output);
                return estimate.Valid ? ExitCodes.Ok : ExitCodes.BadInput;
            }
            arguments.CheckSearchFlags(result);
            var search = ParallelSearch.Search(
                spec,
                seq,
                cluster,
                arguments.Gpus(result),
                arguments.GlobalBatch(result),
                overlap: arguments.Overlap(result),
                flashAttention: arguments.FlashAttention(result)
            );
            if (search.Problems.Count > 0)
                throw new ArgumentException(string.Join(" ", search.Problems));
            if (result.GetValue(json))
            {
                var front = Tradeoffs.ParetoFront(
                    search.Fitting.Select(e => (e.StepSeconds, (double)e.Memory!.Total)).ToArray()
                );
                output.WriteLine(
                    JsonSerializer.Serialize(
                        new
                        {
                            considered = search.Considered,
                            valid = search.Valid,
                            estimatorError = Tradeoffs.EstimatorError,
                            tiedWithFastest = Tradeoffs.TiedWithFastest(
                                search.Fitting.Select(e => e.StepSeconds).ToArray(),
                                Tradeoffs.EstimatorError
                            ),
                            paretoFront = front.Select(i => i + 1), // 1-based ranks in configurations
                            configurations = search.Fitting.Select(Document),
                        },
                        CliOutput.Document
                    )
                );
            }
            else
                WriteTable(spec.Name, cluster, search, output);
            return ExitCodes.Ok;
        });
        return command;
    }

    public static object Document(ParallelEstimate e) =>
        new
        {
            tp = e.Config.Tensor,
            c = e.Config.Context,
            pp = e.Config.Pipeline,
            dp = e.Config.Data,
            vpp = e.Config.VirtualStages,
            mbs = e.Config.MicroBatch,
            globalBatch = e.Config.GlobalBatch,
            microBatches = e.Config.MicroBatches,
            sequenceParallel = e.Config.SequenceParallel,
            recompute = e.Config.Recompute.ToString().ToLowerInvariant(),
            zero = e.Config.Zero,
            overlap = new
            {
                gradReduce = e.Config.Overlap.GradReduce,
                paramGather = e.Config.Overlap.ParamGather,
                tpComm = e.Config.Overlap.TensorParallel,
            },
            schedule = ScheduleNames.Name(e.Config.Schedule),
            attentionBackend = e.Config.FlashAttention ? "flash" : "unfused",
            stepSeconds = e.Valid ? e.StepSeconds : (double?)null,
            tokensPerSecond = e.TokensPerSecond,
            tflopsPerGpu = e.HardwareFlopsPerGpu / 1e12,
            mfu = e.ModelFlopsUtilization,
            memoryPerGpuBytes = e.Memory?.Total,
            fits = e.Fits,
            bubbleFraction = e.BubbleFraction,
            bottleneck = e.Bottleneck,
            time = e.Time is { } t
                ? new
                {
                    compute = t.Compute,
                    tensorComm = t.TensorComm,
                    pipelineComm = t.PipelineComm,
                    bubble = t.Bubble,
                    dataComm = t.DataComm,
                    contextComm = t.ContextComm,
                    optimizer = t.Optimizer,
                }
                : null,
            memory = e.Memory is { } m
                ? new
                {
                    weights = m.Weights,
                    gradients = m.Gradients,
                    optimizerState = m.OptimizerState,
                    activations = m.Activations,
                    reserved = m.Reserved,
                }
                : null,
            violations = e.Violations,
        };

    private static void WriteOne(ParallelEstimate e, TextWriter output)
    {
        output.WriteLine(e.Config.Describe());
        if (!e.Valid)
        {
            foreach (var v in e.Violations)
                output.WriteLine($"breaks: {v}");
            return;
        }
        var t = e.Time!;
        var m = e.Memory!;
        output.WriteLine(
            $"step {t.Step:0.000} s: compute {t.Compute:0.000}, tensor-parallel {t.TensorComm:0.000}, "
                + $"pipeline transfers {t.PipelineComm:0.000}, "
                + $"bubble {t.Bubble:0.000} ({e.BubbleFraction:P1}), data-parallel {t.DataComm:0.000}"
                + (e.Config.Context > 1 ? $", context-parallel ring {t.ContextComm:0.000}" : "")
                + $", optimizer step {t.Optimizer:0.000}"
        );
        output.WriteLine(
            $"{e.TokensPerSecond:N0} tokens/s; {e.HardwareFlopsPerGpu / 1e12:0.0} TFLOP/s per GPU (with "
                + $"recomputation); MFU {e.ModelFlopsUtilization:P1}"
        );
        output.WriteLine(
            $"memory per GPU {Units.Bytes(m.Total)} of {Units.Bytes(e.GpuMemoryBytes)}: weights "
                + $"{Units.Bytes(m.Weights)}, gradients {Units.Bytes(m.Gradients)}, "
                + $"optimizer {Units.Bytes(m.OptimizerState)}, activations {Units.Bytes(m.Activations)}, "
                + $"reserved {Units.Bytes(m.Reserved)}{(e.Fits ? "" : " — does not fit")}"
        );
        output.WriteLine($"bottleneck: {e.Bottleneck}");
    }

    private static void WriteTable(string model, Cluster cluster, SearchResult search, TextWriter output)
    {
        var console = CliOutput.Console(output, 160);
        var table = new Table()
            .Border(TableBorder.Simple)
            .Title(
                $"{model} on {cluster.Gpu.Name}: {search.Fitting.Count:N0} of {search.Valid:N0} valid "
                    + $"configurations fit ({search.Considered:N0} considered)"
            );
        foreach (
            var c in new[]
            {
                "#",
                "t",
                "c",
                "p",
                "v",
                "d",
                "b",
                "m",
                "schedule",
                "SP",
                "recompute",
                "ZeRO",
                "step s",
                "tokens/s",
                "MFU",
                "memory",
                "bottleneck",
            }
        )
            table.AddColumn(new TableColumn(c));
        foreach (var (e, i) in search.Fitting.Take(TableRows).Select((e, i) => (e, i)))
        {
            var c = e.Config;
            table.AddRow(
                (i + 1).ToString(),
                c.Tensor.ToString(),
                c.Context.ToString(),
                c.Pipeline.ToString(),
                c.VirtualStages.ToString(),
                c.Data.ToString(),
                c.MicroBatch.ToString(),
                c.MicroBatches.ToString(),
                ScheduleNames.Name(c.Schedule),
                c.SequenceParallel ? "yes" : "no",
                c.Recompute.ToString().ToLowerInvariant(),
                c.Zero.ToString(),
                e.StepSeconds.ToString("0.000"),
                e.TokensPerSecond.ToString("N0"),
                e.ModelFlopsUtilization.ToString("P1"),
                Units.Bytes(e.Memory!.Total),
                e.Bottleneck
            );
        }
        console.Write(table);
        if (search.Fitting.Count == 0)
        {
            output.WriteLine("No configuration fits: use more GPUs, a smaller global batch, or GPUs with more memory.");
            return;
        }
        var tied = Tradeoffs.TiedWithFastest(
            search.Fitting.Select(e => e.StepSeconds).ToArray(),
            Tradeoffs.EstimatorError
        );
        output.WriteLine(
            tied > 1
                ? $"The {tied:N0} fastest are within the estimator's error ({Tradeoffs.EstimatorError:P1} "
                    + "on published runs it was not fitted on) of the fastest: a tie, not a ranking."
                : "The fastest is ahead of the next by more than the estimator's error "
                    + $"({Tradeoffs.EstimatorError:P1})."
        );
        var front = Tradeoffs.ParetoFront(
            search.Fitting.Select(e => (e.StepSeconds, (double)e.Memory!.Total)).ToArray()
        );
        output.WriteLine(
            $"Pareto front of step time against memory per GPU ({front.Count} configurations, least memory first):"
        );
        foreach (var i in front.OrderBy(i => search.Fitting[i].Memory!.Total))
            output.WriteLine(
                $"  #{i + 1, -5} {search.Fitting[i].Config.Describe()}: "
                    + $"{search.Fitting[i].StepSeconds:0.000} s, {Units.Bytes(search.Fitting[i].Memory!.Total)}"
            );
    }
}
