using System.Text.Json;
using Explorer.Core.Formatting;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer bench --weights DIR --stream</c>: a checkpoint run layer by layer from its files, against what bounds
/// it: reading the files, and the same forward's compute with the model resident (when it fits); layers mapped, then
/// read. Reports the overlap the two buffers achieve, anonymous memory during the streamed forward, and whether the
/// logits equal the resident ones.
/// </summary>
public static class StreamBench
{
    /// <param name="ResidentMs">The resident traced forward, or null when the model does not fit in memory.</param>
    /// <param name="ComputeMs">The streamed forward less its time waiting for reads: its compute, measured in the same
    /// run.</param>
    /// <param name="Loading">"mapped" (layers are views of the mapped files) or "read" (read into the buffers'
    /// memory).</param>
    /// <param name="ResidentPeakBytes">The resident forward's most resident memory, file pages included (its weights
    /// are mapped), and anonymous.</param>
    public sealed record Forward(
        string Loading,
        int Tokens,
        double? ResidentMs,
        double StreamedMs,
        double ComputeMs,
        double ReadingMs,
        double WaitingMs,
        long PeakAnonymousBytes,
        bool? EqualLogits,
        (long All, long Anonymous)? ResidentPeakBytes = null
    )
    {
        /// <summary>The streamed forward against the larger of its two bounds, reading its layers and computing (1 =
        /// perfect overlap).</summary>
        public double AgainstBound(double layerReadMs) => StreamedMs / Math.Max(layerReadMs, ResidentMs ?? ComputeMs);

        /// <summary>How much of the shorter of reading and computing was hidden under the longer (1 = all of
        /// it).</summary>
        public double Overlap =>
            Math.Clamp((ReadingMs + ComputeMs - StreamedMs) / Math.Min(ReadingMs, ComputeMs), 0, 1);
    }

    /// <param name="FirstReadSeconds">The files read raw as they were (from disk, or partly from the page
    /// cache).</param>
    /// <param name="RawReadSeconds">Read again at once: from the page cache as far as it holds them; the read
    /// bound.</param>
    /// <param name="LayerReadSeconds">The share of <paramref name="RawReadSeconds"/> that is the layers (what a forward
    /// reads).</param>
    /// <param name="AutoLoading">How a streamed load that does not ask would bring the layers in ("mapped" or
    /// "read").</param>
    public sealed record Report(
        string Model,
        int Layers,
        string AutoLoading,
        long FileBytes,
        double FirstReadSeconds,
        double RawReadSeconds,
        double LayerReadSeconds,
        long LayerBytes,
        long StreamedWeightBytes,
        IReadOnlyList<Forward> Forwards
    );

    public static Report Run(string directory, IReadOnlyList<int> lengths, int repeats, TextWriter output)
    {
        var spec = Checkpoint.ReadSpec(directory);
        var files = Directory.EnumerateFiles(directory, "*.safetensors").Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0)
            throw new ArgumentException($"--weights {directory}: no .safetensors files there.");
        foreach (var length in lengths)
            if (length > spec.ContextLength)
                throw new ArgumentException($"--lengths {length}: over {spec.Name}'s context of {spec.ContextLength}.");
        var fileBytes = files.Sum(f => new FileInfo(f).Length);
        var firstSeconds = WeightsBench.RawRead(files);
        var rawSeconds = WeightsBench.RawRead(files);
        output.WriteLine(
            $"read {files.Length} files, {Units.Bytes(fileBytes)} raw: {firstSeconds:0.00} s "
                + $"({fileBytes / firstSeconds / 1e9:0.00} GB/s), "
                + $"again at once {rawSeconds:0.00} s ({fileBytes / rawSeconds / 1e9:0.00} GB/s)"
        );

        // Resident, when the whole model fits with 2 GiB to spare: the compute bound, and the logits to compare. Its
        // forwards alternate with the streamed ones, so a change in this machine's speed moves both alike.
        var dtype = Checkpoint.DefaultType(Checkpoint.OpenTensors(directory));
        var fits = Checkpoint.ResidentBytes(spec, dtype) + (2L << 30) < Checkpoint.AvailableMemoryBytes();
        if (!fits)
            output.WriteLine(
                $"  resident: does not fit ({Units.Bytes(Checkpoint.ResidentBytes(spec, dtype))} of "
                    + $"weights, {Units.Bytes(Checkpoint.AvailableMemoryBytes())} available); compute is the "
                    + "streamed forward less its waits"
            );
        using var resident = fits ? LiveModel.FromCheckpoint(directory, "cpu") : null;

        var layerFileBytes = Checkpoint.LayerFileBytes(Checkpoint.OpenTensors(directory));
        var layerReadMs = rawSeconds * 1000 * layerFileBytes / fileBytes;
        var autoMaps = Checkpoint.MapsLayers(
            layerFileBytes,
            Checkpoint.StreamedBytes(spec, dtype),
            Checkpoint.AvailableMemoryBytes()
        );
        output.WriteLine(
            $"  its layers ({Units.Bytes(layerFileBytes)}), streamed by the app or explorer forward --stream, are "
                + (autoMaps ? "mapped (the page cache holds them)" : "read (more than the page cache holds)")
        );
        // The resident forward's memory, measured while it is the only model in the process.
        var residentMemory = new Dictionary<int, (long All, long Anonymous)>();
        if (resident is not null)
            foreach (var length in lengths)
            {
                using var tokens = WeightsBench.RandomTokens(spec, length);
                long all = 0,
                    anonymous = 0;
                using var trace = resident.Decoder.Trace(
                    tokens,
                    TraceOptions.ForViews(length, attention: false),
                    onLayer: _ =>
                    {
                        all = Math.Max(all, ProcessMemory.Resident());
                        anonymous = Math.Max(anonymous, ProcessMemory.AnonymousResident());
                    }
                );
                residentMemory[length] = (all, anonymous);
            }
        var forwards = new List<Forward>();
        long layerBytes = 0,
            streamedBytes = 0;
        foreach (var mapLayers in new[] { true, false })
        {
            var loading = mapLayers ? "mapped" : "read";
            using var live = LiveModel.FromCheckpoint(directory, "cpu", streamed: true, mapLayers: mapLayers);
            var stream = (LayerStream)live.Decoder.LayerSource!;
            (layerBytes, streamedBytes) = (stream.LayerBytes, Checkpoint.StreamedBytes(spec, live.Decoder.DType));
            output.WriteLine(
                $"streamed {live.Name}, layers {loading} ({spec.Layers} layers, {live.Decoder.DType}): "
                    + $"{Units.Bytes(layerBytes)} a layer, "
                    + $"{Units.Bytes(streamedBytes)} of weights in memory"
            );
            foreach (var length in lengths)
            {
                using var tokens = WeightsBench.RandomTokens(spec, length);
                var options = TraceOptions.ForViews(length, attention: false);
                float[] Logits(LiveModel model, Action<int>? onLayer = null)
                {
                    using var trace = model.Decoder.Trace(tokens, options, onLayer: onLayer);
                    return trace.LastLogits();
                }
                // Warm-up, both (each streamed layer's first read also checks its values).
                var residentLogits = resident is null ? null : Logits(resident);
                Logits(live);
                var runs = Enumerable
                    .Range(0, repeats)
                    .Select(_ =>
                    {
                        double? residentRun = resident is null ? null : Timing.Milliseconds(() => Logits(resident));
                        var (_, reading0, waiting0) = stream.Counters;
                        long peak = 0;
                        float[] logits = [];
                        var ms = Timing.Milliseconds(() =>
                            logits = Logits(live, _ => peak = Math.Max(peak, ProcessMemory.AnonymousResident()))
                        );
                        var (_, reading1, waiting1) = stream.Counters;
                        return (
                            Ms: ms,
                            Resident: residentRun,
                            Reading: (reading1 - reading0).TotalMilliseconds,
                            Waiting: (waiting1 - waiting0).TotalMilliseconds,
                            Peak: peak,
                            Logits: logits
                        );
                    })
                    .ToArray();
                var median = runs.OrderBy(r => r.Ms).ElementAt(runs.Length / 2);
                var residentMs = resident is null ? (double?)null : Timing.Median(runs.Select(r => r.Resident!.Value));
                bool? equal = residentLogits?.SequenceEqual(median.Logits);
                var row = new Forward(
                    loading,
                    length,
                    residentMs,
                    median.Ms,
                    median.Ms - median.Waiting,
                    median.Reading,
                    median.Waiting,
                    runs.Max(x => x.Peak),
                    equal,
                    residentMemory.TryGetValue(length, out var memory) ? memory : null
                );
                forwards.Add(row);
                output.WriteLine(
                    $"  {length} tokens: "
                        + (residentMs is null ? "" : $"resident {residentMs:0} ms, ")
                        + $"streamed ({loading}) {row.StreamedMs:0} ms (reading {row.ReadingMs:0} ms, "
                        + $"computing {row.ComputeMs:0} ms, "
                        + $"waiting for reads {row.WaitingMs:0} ms); "
                        + $"{row.AgainstBound(layerReadMs):0.00}× the larger of reading its layers "
                        + $"({layerReadMs:0} ms) and computing, overlap {row.Overlap:P0}; "
                        + $"anonymous memory {Units.Bytes(row.PeakAnonymousBytes)} at most"
                        + (
                            row.ResidentPeakBytes is { } r
                                ? $" (resident: {Units.Bytes(r.All)}, of it anonymous {Units.Bytes(r.Anonymous)})"
                                : ""
                        )
                        + (
                            equal is null ? ""
                            : equal.Value ? "; logits equal to resident"
                            : "; LOGITS DIFFER from resident"
                        )
                );
            }
            ProcessMemory.Trim();
        }
        return new Report(
            new DirectoryInfo(directory).Name,
            spec.Layers,
            autoMaps ? "mapped" : "read",
            fileBytes,
            firstSeconds,
            rawSeconds,
            layerReadMs / 1000,
            layerBytes,
            streamedBytes,
            forwards
        );
    }

    public static void WriteJson(Report report, string path) =>
        File.WriteAllText(
            path,
            JsonSerializer.Serialize(
                new
                {
                    model = report.Model,
                    layers = report.Layers,
                    autoLoading = report.AutoLoading,
                    fileBytes = report.FileBytes,
                    firstReadSeconds = report.FirstReadSeconds,
                    rawReadSeconds = report.RawReadSeconds,
                    layerReadSeconds = report.LayerReadSeconds,
                    layerBytes = report.LayerBytes,
                    streamedWeightBytes = report.StreamedWeightBytes,
                    forwards = report.Forwards.Select(f => new
                    {
                        loading = f.Loading,
                        tokens = f.Tokens,
                        residentMs = f.ResidentMs,
                        streamedMs = f.StreamedMs,
                        computeMs = f.ComputeMs,
                        readingMs = f.ReadingMs,
                        waitingMs = f.WaitingMs,
                        againstBound = f.AgainstBound(report.LayerReadSeconds * 1000),
                        overlap = f.Overlap,
                        peakAnonymousBytes = f.PeakAnonymousBytes,
                        equalLogits = f.EqualLogits,
                        residentPeakBytes = f.ResidentPeakBytes?.All,
                        residentPeakAnonymousBytes = f.ResidentPeakBytes?.Anonymous,
                    }),
                },
                CliOutput.Report
            )
        );
}
