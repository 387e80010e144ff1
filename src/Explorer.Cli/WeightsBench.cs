using System.Text.Json;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer bench --weights DIR</c>: a real checkpoint's figures in one run: loading against reading the same
/// files raw, resident memory, and fused against traced forwards (with the views' capture) with the lens's share.
/// </summary>
public static class WeightsBench
{
    /// <summary>
    /// One prompt length: the fused forward; the forward with the Layers page's default view (what its first charts
    /// wait for); and the lens completed at every position after it. Traced = view + lens.
    /// </summary>
    public sealed record Forward(int Tokens, double FusedMs, double ViewMs, double LensMs)
    {
        public double TracedMs => ViewMs + LensMs;
    }

    public sealed record Report(
        string Model,
        long WeightBytes,
        double LoadSeconds,
        double RawReadSeconds,
        long ResidentBytes,
        long PeakResidentBytes,
        IReadOnlyList<Forward> Forwards
    );

    public static Report Run(string directory, IReadOnlyList<int> lengths, int repeats, TextWriter output)
    {
        var files = Directory.EnumerateFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new ArgumentException($"--weights {directory}: no .safetensors files there.");
        var bytes = files.Sum(f => new FileInfo(f).Length);
        var rawSeconds = RawRead(files);
        output.WriteLine(
            $"read {files.Length} files, {Units.Bytes(bytes)} raw: {rawSeconds:0.00} s "
                + $"({bytes / rawSeconds / 1e9:0.00} GB/s)"
        );

        var load = System.Diagnostics.Stopwatch.StartNew();
        using var live = LiveModel.FromCheckpoint(directory, "cpu");
        var loadSeconds = load.Elapsed.TotalSeconds;
        ProcessMemory.Trim();
        var resident = ProcessMemory.Resident();
        output.WriteLine(
            $"loaded {live.Name} ({DesignSummary.FamilyName(live.Spec.Family)}, {live.Spec.Layers} "
                + $"layers, d {live.Spec.HiddenSize}, {live.Decoder.DType}): {loadSeconds:0.00} s, "
                + $"{loadSeconds / rawSeconds:0.00}× the raw read; resident {Units.Bytes(resident)}, peak "
                + $"{Units.Bytes(ProcessMemory.PeakResident())}"
        );
        foreach (var warning in live.ConfigWarnings)
            output.WriteLine($"warning: {warning}");

        var forwards = new List<Forward>();
        foreach (var length in lengths)
        {
            if (length > live.Spec.ContextLength)
                throw new ArgumentException(
                    $"--lengths {length}: over {live.Name}'s context of {live.Spec.ContextLength}."
                );
            using var tokens = RandomTokens(live.Spec, length);
            var view = TraceOptions.ForViews(length, attention: false);
            live.Decoder.Logits(tokens).Dispose(); // warm-up
            var runs = Enumerable
                .Range(0, repeats)
                .Select(_ =>
                {
                    var fused = Timing.Milliseconds(() => live.Decoder.Logits(tokens).Dispose());
                    DecoderTrace? trace = null;
                    var viewMs = Timing.Milliseconds(() => trace = live.Decoder.Trace(tokens, view));
                    using (trace)
                        return (
                            Fused: fused,
                            View: viewMs,
                            Lens: Timing.Milliseconds(() => trace!.CompleteLens(live.Decoder))
                        );
                })
                .ToArray();
            var row = new Forward(
                length,
                Timing.Median(runs.Select(r => r.Fused)),
                Timing.Median(runs.Select(r => r.View)),
                Timing.Median(runs.Select(r => r.Lens))
            );
            forwards.Add(row);
            output.WriteLine(
                $"  {length, 4} tokens: fused {row.FusedMs:0} ms, default view {row.ViewMs:0} ms "
                    + $"({row.ViewMs / row.FusedMs:0.00}×), "
                    + $"lens at every position {row.LensMs:0} ms; traced {row.TracedMs:0} ms "
                    + $"({row.TracedMs / row.FusedMs:0.00}×), lens {row.LensMs / row.TracedMs:P0} of it"
            );
        }
        return new Report(live.Name, bytes, loadSeconds, rawSeconds, resident, ProcessMemory.PeakResident(), forwards);
    }

    /// <summary>A (1, length) prompt of token ids drawn with a fixed seed: the same prompt in every bench
    /// run.</summary>
    internal static Tensor RandomTokens(Explorer.Core.Specs.ModelSpec spec, int length)
    {
        using var generator = new Generator(99, CPU);
        return torch.randint(0, spec.VocabularySize, [1, length], generator: generator, dtype: ScalarType.Int64);
    }

    /// <summary>
    /// Seconds to read every byte of <paramref name="files"/> through the same kind of stream the loader uses, into one
    /// reused buffer: the read bound (from the page cache where the files are in it).
    /// </summary>
    internal static double RawRead(IEnumerable<string> files)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var buffer = new byte[SafetensorsFile.ChunkBytes];
        foreach (var file in files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            while (stream.Read(buffer) > 0) { }
        }
        return watch.Elapsed.TotalSeconds;
    }

    public static void WriteJson(Report report, string path) =>
        File.WriteAllText(
            path,
            JsonSerializer.Serialize(
                new
                {
                    model = report.Model,
                    weightBytes = report.WeightBytes,
                    loadSeconds = report.LoadSeconds,
                    rawReadSeconds = report.RawReadSeconds,
                    residentBytes = report.ResidentBytes,
                    peakResidentBytes = report.PeakResidentBytes,
                    forwards = report.Forwards.Select(f => new
                    {
                        tokens = f.Tokens,
                        fusedMs = f.FusedMs,
                        viewMs = f.ViewMs,
                        tracedMs = f.TracedMs,
                        lensMs = f.LensMs,
                    }),
                },
                CliOutput.Report
            )
        );
}
