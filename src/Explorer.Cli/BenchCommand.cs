using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Accounting;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Pipeline;
using Explorer.Model.Weights;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer bench</c>: the live model's figures, as ratios measured in one process run so that they hold on a
/// noisy machine: capture overhead (traced / fused), model FLOP utilisation against an fp32 matmul measured
/// here, bytes per head view, and resident memory after many forwards against after one.
/// </summary>
public static class BenchCommand
{
    /// <summary>
    /// The default view, what the Layers page asks of a forward: residual statistics and the states to read the lens
    /// after it. The Attention page adds the maps (<see cref="AttentionCapture"/>).
    /// </summary>
    public static TraceOptions PageCapture(int length) => TraceOptions.ForViews(length, attention: false);

    public static TraceOptions AttentionCapture(int length) => TraceOptions.ForViews(length, attention: true);

    public sealed record Row(
        string Model,
        int Tokens,
        double FusedMs,
        double CapturedMs,
        double CaptureOverhead,
        double AttentionViewMs,
        double AttentionOverhead,
        double ForwardGflops,
        double MatmulGflops,
        double Utilisation,
        long HeadViewBytes,
        long AttentionBytesHeld
    );

    public sealed record MemoryRow(
        string Model,
        int Tokens,
        int Forwards,
        long ResidentAfterFirst,
        long ResidentAfterAll
    )
    {
        public long Growth => ResidentAfterAll - ResidentAfterFirst;
    }

    public static Command Create(TextWriter output, TextWriter error)
    {
        var models = new Option<string>("--models")
        {
            Description = "Comma-separated mini presets.",
            DefaultValueFactory = _ => "deepseek-7b-mini,deepseek-67b-mini",
        };
        var lengths = new Option<string>("--lengths")
        {
            Description = "Comma-separated prompt lengths in tokens.",
            DefaultValueFactory = _ => "128,512",
        };
        var repeats = new Option<int>("--repeats")
        {
            Description = "Timed runs per figure (the median is reported).",
            DefaultValueFactory = _ => 5,
        };
        var forwards = new Option<int>("--forwards")
        {
            Description = "Forwards for the memory figure.",
            DefaultValueFactory = _ => 200,
        };
        var json = new Option<FileInfo>("--json") { Description = "Also write the figures as JSON." };
        var weights = new Option<string>("--weights", "-w")
        {
            Description =
                "A checkpoint folder: its load time against a raw read, memory, and forwards (lengths default 32,128).",
        };
        var stream = new Option<bool>("--stream")
        {
            Description =
                "With --weights: run the checkpoint streamed, layer by layer from its files, against "
                + "reading them and computing resident; overlap, memory, equal logits.",
        };
        var suite = new Option<string>("--suite")
        {
            Description =
                "live (the models), planner (partitioning and simulation), interventions (each sweep "
                + "against one forward; with --weights also attribution on that checkpoint, with --stream "
                + "streamed), or all (the three, minis only).",
            DefaultValueFactory = _ => "live",
        };
        var command = new Command(
            "bench",
            "Measure the live model (forward time, capture overhead, FLOP utilisation, payload, memory) "
                + "or the pipeline planner."
        )
        {
            models,
            lengths,
            repeats,
            forwards,
            json,
            suite,
            weights,
            stream,
        };
        CommandAction.Set(command, error, result =>
        {
            var which = result.GetValue(suite)!.Trim().ToLowerInvariant();
            if (which is not ("live" or "planner" or "interventions" or "all"))
                throw new ArgumentException($"--suite '{which}': use live, planner, interventions or all.");
            if (which == "interventions")
                return RunInterventions(
                    result.GetValue(weights),
                    result.GetValue(stream),
                    result,
                    lengths,
                    repeats,
                    json,
                    output
                );
            if (result.GetValue(weights) is { } folder)
            {
                if (!Directory.Exists(folder))
                    throw new ArgumentException($"--weights {folder}: no such folder.");
                var counts = result.GetResult(lengths) is { Implicit: false }
                    ? ForwardCommand.ParseTokens(result.GetValue(lengths)!)
                    : [32, 128];
                if (counts.Any(n => n < 1 || n > 4096))
                    throw new ArgumentException("--lengths: each length must be between 1 and 4096 tokens.");
                if (result.GetValue(repeats) < 1)
                    throw new ArgumentException("--repeats must be at least 1.");
                if (result.GetValue(stream))
                {
                    var streamed = StreamBench.Run(folder, counts, result.GetValue(repeats), output);
                    if (result.GetValue(json) is { } streamedJson)
                        StreamBench.WriteJson(streamed, streamedJson.FullName);
                    return ExitCodes.Ok;
                }
                var report = WeightsBench.Run(folder, counts, result.GetValue(repeats), output);
                if (result.GetValue(json) is { } file)
                    WeightsBench.WriteJson(report, file.FullName);
                return ExitCodes.Ok;
            }
            if (result.GetValue(stream))
                throw new ArgumentException("--stream benchmarks a checkpoint run layer by layer: give --weights DIR.");
            if (which is "planner" or "all")
                PlannerBench.Run(output);
            if (which == "planner")
                return ExitCodes.Ok;
            var specs = result
                .GetValue(models)!
                .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(n =>
                    MiniPresets.TryGet(n, out var s)
                        ? s
                        : throw new ArgumentException($"--models: unknown mini preset '{n}'.")
                )
                .ToArray();
            var tokenCounts = ForwardCommand.ParseTokens(result.GetValue(lengths)!);
            if (tokenCounts.Any(n => n < 2 || n > 1024))
                throw new ArgumentException("--lengths: each length must be between 2 and 1024 tokens.");
            var r = result.GetValue(repeats);
            var f = result.GetValue(forwards);
            if (r < 1 || f < 2)
                throw new ArgumentException("--repeats must be at least 1 and --forwards at least 2.");
            Run(specs, tokenCounts, r, f, result.GetValue(json), output);
            if (which == "all")
            {
                output.WriteLine(
                    $"Interventions: each sweep against one fused forward of the same prompt (median of {r}):"
                );
                InterventionsBench.Run(null, streamed: false, InterventionsBench.DefaultLength, r, output);
            }
            return ExitCodes.Ok;
        });
        return command;
    }

    private static int RunInterventions(
        string? weights,
        bool streamed,
        ParseResult result,
        Option<string> lengths,
        Option<int> repeats,
        Option<FileInfo> json,
        TextWriter output
    )
    {
        if (weights is not null && !Directory.Exists(weights))
            throw new ArgumentException($"--weights {weights}: no such folder.");
        if (streamed && weights is null)
            throw new ArgumentException("--stream runs a checkpoint layer by layer: give --weights DIR.");
        var counts = result.GetResult(lengths) is { Implicit: false }
            ? ForwardCommand.ParseTokens(result.GetValue(lengths)!)
            : [InterventionsBench.DefaultLength];
        if (counts.Length != 1 || counts[0] < 4 || counts[0] > 512 || counts[0] % 2 != 0)
            throw new ArgumentException(
                $"--lengths {string.Join(",", counts)}: the interventions suite takes one even length "
                    + "from 4 to 512 tokens."
            );
        var r = result.GetValue(repeats);
        if (r < 1)
            throw new ArgumentException("--repeats must be at least 1.");
        output.WriteLine($"Interventions: each sweep against one fused forward of the same prompt (median of {r}):");
        var rows = InterventionsBench.Run(weights, streamed, counts[0], r, output);
        if (result.GetValue(json) is { } file)
            InterventionsBench.WriteJson(rows, file.FullName);
        return ExitCodes.Ok;
    }

    private static void Run(
        ModelSpec[] specs,
        int[] lengths,
        int repeats,
        int forwards,
        FileInfo? json,
        TextWriter output
    )
    {
        var matmul = MatmulGflops();
        output.WriteLine(
            $"fp32 matmul (1024², {torch.get_num_threads()} threads, OpenMP wait policy "
                + $"{OmpWaitPolicy.Current() ?? "default"}): {matmul:0.0} GFLOP/s"
        );
        var rows = new List<Row>();
        var memory = new List<MemoryRow>();
        foreach (var spec in specs)
        {
            using var live = LiveModel.Mini(spec, device: "cpu");
            foreach (var length in lengths)
            {
                using var tokens = RandomTokens(length, spec.VocabularySize);
                var options = PageCapture(length);
                var withMaps = AttentionCapture(length);
                Warm(live.Decoder, tokens, options);
                Warm(live.Decoder, tokens, withMaps);
                // Fused and captured runs alternate, and the overhead is the median of the runs' ratios, so a
                // slow spell of the machine hits both sides of a ratio alike.
                long held = 0,
                    headBytes = 0;
                var runs = Enumerable
                    .Range(0, repeats)
                    .Select(_ =>
                    {
                        var f = Timing.Milliseconds(() =>
                        {
                            using var __ = live.Decoder.Logits(tokens);
                        });
                        var c = Timing.Milliseconds(() => live.Decoder.Trace(tokens, options).Dispose());
                        var a = Timing.Milliseconds(() =>
                        {
                            using var trace = live.Decoder.Trace(tokens, withMaps);
                            held = trace.AttentionBytes;
                            headBytes = trace.HeadMap(spec.Layers - 1, 0).Length * sizeof(float);
                        });
                        return (Fused: f, Captured: c, Attention: a);
                    })
                    .ToArray();
                var fused = Timing.Median(runs.Select(p => p.Fused));
                var captured = Timing.Median(runs.Select(p => p.Captured));
                var overhead = Timing.Median(runs.Select(p => p.Captured / p.Fused));
                var attentionView = Timing.Median(runs.Select(p => p.Attention));
                var attentionOverhead = Timing.Median(runs.Select(p => p.Attention / p.Fused));
                var gflops = FlopCount.Of(spec, length).ForwardPerToken * (double)length / (fused / 1000) / 1e9;
                rows.Add(
                    new Row(
                        spec.Name,
                        length,
                        fused,
                        captured,
                        overhead,
                        attentionView,
                        attentionOverhead,
                        gflops,
                        matmul,
                        gflops / matmul,
                        headBytes,
                        held
                    )
                );
                // Where capture time goes: each part alone, over fused.
                var parts = new (string Name, TraceOptions Options)[]
                {
                    ("none", TraceOptions.Nothing),
                    ("residual", TraceOptions.Nothing with { Residual = true }),
                    ("attention", TraceOptions.Nothing with { Attention = true }),
                    ("lens@last", TraceOptions.Nothing with { LogitLens = true, LensPositions = [length - 1] }),
                    ("lens@all", TraceOptions.Nothing with { LogitLens = true }),
                };
                double Share(TraceOptions options) =>
                    Timing.Median(
                        Enumerable
                            .Range(0, repeats)
                            .Select(_ =>
                                Timing.Milliseconds(() => live.Decoder.Trace(tokens, options).Dispose())
                                / Timing.Milliseconds(() => live.Decoder.Logits(tokens).Dispose())
                            )
                    );
                var shares = parts.Select(p => $"{p.Name} {Share(p.Options):0.00}");
                output.WriteLine(
                    $"  {spec.Name} @ {length}: fused {fused:0.0} ms, captured {captured:0.0} ms; each "
                        + $"part alone / fused: {string.Join(", ", shares)}"
                );
            }
            memory.Add(Memory(live.Decoder, lengths[0], forwards));
        }

        var console = CliOutput.Console(output, 170);
        var table = new Table().Border(TableBorder.Simple).Title("Live model (CPU, fp32)");
        foreach (
            var c in new[]
            {
                "model",
                "tokens",
                "fused ms",
                "layers view ms",
                "/ fused",
                "attention view ms",
                "/ fused",
                "fwd GFLOP/s",
                "/ matmul",
                "head view",
                "maps held",
            }
        )
            table.AddColumn(new TableColumn(c).RightAligned());
        foreach (var r in rows)
            table.AddRow(
                r.Model,
                r.Tokens.ToString(),
                r.FusedMs.ToString("0.0"),
                r.CapturedMs.ToString("0.0"),
                r.CaptureOverhead.ToString("0.00"),
                r.AttentionViewMs.ToString("0.0"),
                r.AttentionOverhead.ToString("0.00"),
                r.ForwardGflops.ToString("0.0"),
                (r.Utilisation * 100).ToString("0") + "%",
                Units.Bytes(r.HeadViewBytes),
                Units.Bytes(r.AttentionBytesHeld)
            );
        console.Write(table);
        var mem = new Table().Border(TableBorder.Simple).Title("Resident memory, captured forwards");
        foreach (var c in new[] { "model", "tokens", "forwards", "after 1", "after all", "growth" })
            mem.AddColumn(new TableColumn(c).RightAligned());
        foreach (var m in memory)
            mem.AddRow(
                m.Model,
                m.Tokens.ToString(),
                m.Forwards.ToString(),
                Units.Bytes(m.ResidentAfterFirst),
                Units.Bytes(m.ResidentAfterAll),
                Units.Bytes(m.Growth)
            );
        console.Write(mem);
        if (json is not null)
            File.WriteAllText(
                json.FullName,
                JsonSerializer.Serialize(
                    new
                    {
                        matmulGflops = matmul,
                        rows,
                        memory,
                    },
                    CliOutput.Report
                )
            );
    }

    private static MemoryRow Memory(Decoder decoder, int length, int forwards)
    {
        using var tokens = RandomTokens(length, decoder.Spec.VocabularySize);
        var options = AttentionCapture(length);
        long first = 0;
        for (var i = 0; i < forwards; i++)
        {
            using (var trace = decoder.Trace(tokens, options))
                _ = trace.HeadMap(0, 0);
            ProcessMemory.Trim();
            if (i == 0)
                first = ProcessMemory.Resident();
        }
        return new MemoryRow(decoder.Spec.Name, length, forwards, first, ProcessMemory.Resident());
    }

    private static double MatmulGflops()
    {
        const int n = 1024;
        using var a = torch.randn(n, n);
        using var b = torch.randn(n, n);
        for (var i = 0; i < 3; i++)
            a.matmul(b).Dispose();
        var ms = Timing.Median(9, () => a.matmul(b).Dispose());
        return 2.0 * n * n * n / (ms / 1000) / 1e9;
    }

    private static void Warm(Decoder decoder, Tensor tokens, TraceOptions options)
    {
        decoder.Logits(tokens).Dispose();
        decoder.Trace(tokens, options).Dispose();
    }

    private static Tensor RandomTokens(int length, int vocabulary)
    {
        var generator = new Generator(99, CPU);
        return torch.randint(0, vocabulary, [1, length], generator: generator, dtype: ScalarType.Int64);
    }
}
