using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests.Weights;

/// <summary>
/// A checkpoint run streamed (its layers read from the files as the forward reaches them, two in memory) computes what
/// the same checkpoint computes resident: the same layer code on the same values, so every number is equal, not close.
/// </summary>
public sealed class StreamedCheckpointTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-stream-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Folder(string name) => Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;

    public static TheoryData<string, ScalarType, long, bool> Shapes =>
        new()
        {
            { "small", ScalarType.Float32, long.MaxValue, true }, // one file, fp32, GQA 4:2
            { "small", ScalarType.BFloat16, 12_000, true }, // shards, bf16
            { "tied", ScalarType.Float32, 20_000, true }, // head tied to the embedding, shards
            { "mha-deep", ScalarType.BFloat16, long.MaxValue, true }, // 7 layers, no GQA
            // The same, each layer read into the buffers' own memory instead of mapped.
            { "small", ScalarType.Float32, long.MaxValue, false },
            { "small", ScalarType.BFloat16, 12_000, false },
            { "tied", ScalarType.Float32, 20_000, false },
            { "mha-deep", ScalarType.BFloat16, long.MaxValue, false },
        };

    public static TheoryData<bool> Modes => new() { true, false };

    private static ModelSpec Spec(string shape) =>
        shape switch
        {
            "small" => TestModels.Small,
            "tied" => TestModels.Small with { TiedEmbeddings = true },
            "mha-deep" => TestModels.Small with { Layers = 7, KeyValueHeads = 4 },
            _ => throw new ArgumentException(shape),
        };

    private static readonly TraceOptions Everything = new()
    {
        Attention = true,
        Residual = true,
        LogitLens = true,
        DeferredLensPositions = [1, 3, 5],
    };
    private static readonly long[] Prompt = [3, 1, 4, 1, 5, 9, 2, 6];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void StreamedEqualsResidentInEveryNumber(string shape, ScalarType dtype, long maxShardBytes, bool mapLayers)
    {
        var folder = Folder($"{shape}-{dtype}-{maxShardBytes}");
        RandomCheckpoint.Write(Spec(shape), folder, dtype, maxShardBytes, seed: 11);
        using var resident = Checkpoint.Load(folder);
        using var streamed = Checkpoint.LoadStreamed(folder, mapLayers: mapLayers);
        Assert.False(resident.IsStreamed);
        Assert.True(streamed.IsStreamed);
        Assert.Equal(resident.DType, streamed.DType);
        // Only the embedding, final norm and head are the streamed decoder's own parameters.
        Assert.DoesNotContain(streamed.named_parameters(), p => p.name.Contains(".layers."));

        using var tokens = TestModels.Tokens(Prompt);
        for (var pass = 0; pass < 2; pass++) // the second forward reads every layer again into the same buffers
        {
            using var a = resident.Trace(tokens, Everything);
            using var b = streamed.Trace(tokens, Everything);
            Assert.Equal(a.LastLogits(), b.LastLogits());
            for (var p = 0; p < Prompt.Length; p++)
                Assert.Equal(a.LogitsAt(p), b.LogitsAt(p));
            Assert.Equal(a.ResidualNorm, b.ResidualNorm);
            Assert.Equal(a.BlockInfluence, b.BlockInfluence);
            Assert.Equal(a.RelativeUpdate, b.RelativeUpdate);
            Assert.Equal(a.AttentionNorm, b.AttentionNorm);
            Assert.Equal(a.FfnNorm, b.FfnNorm);
            Assert.Equal(a.HeadEntropy, b.HeadEntropy);
            Assert.Equal(a.SinkMass, b.SinkMass);
            Assert.Equal(a.PreviousTokenScore, b.PreviousTokenScore);
            for (var l = 0; l < a.Layers; l++)
            for (var h = 0; h < a.Spec.AttentionHeads; h++)
                Assert.Equal(a.HeadMap(l, h), b.HeadMap(l, h));
            AssertSameLens(a.LogitLens!, b.LogitLens!);
            AssertSameLens(a.CompleteLens(resident), b.CompleteLens(streamed));
        }
    }

    private static void AssertSameLens(LogitLensEntry[,] a, LogitLensEntry[,] b)
    {
        Assert.Equal(a.GetLength(0), b.GetLength(0));
        Assert.Equal(a.GetLength(1), b.GetLength(1));
        for (var l = 0; l < a.GetLength(0); l++)
        for (var p = 0; p < a.GetLength(1); p++)
        {
            Assert.Equal(a[l, p].TopTokens, b[l, p].TopTokens);
            Assert.Equal(a[l, p].TopProbabilities, b[l, p].TopProbabilities);
            Assert.Equal(a[l, p].Entropy, b[l, p].Entropy);
            Assert.Equal(a[l, p].KlToFinal, b[l, p].KlToFinal);
        }
    }

    [Fact]
    public void CancelStopsBetweenLayersAndTheNextForwardIsWhole()
    {
        var spec = Spec("mha-deep");
        var folder = Folder("cancel");
        RandomCheckpoint.Write(spec, folder, ScalarType.Float32, long.MaxValue, seed: 12);
        using var resident = Checkpoint.Load(folder);
        using var streamed = Checkpoint.LoadStreamed(folder);
        using var tokens = TestModels.Tokens(Prompt);
        using var cancel = new CancellationTokenSource();
        var reached = new List<int>();
        Assert.ThrowsAny<OperationCanceledException>(() => streamed.Trace(tokens, Everything, cancel.Token, done =>
            {
                reached.Add(done);
                if (done == 3)
                    cancel.Cancel();
            }));
        Assert.Equal([1, 2, 3], reached); // stopped before layer 4 of 7

        using var a = resident.Trace(tokens, Everything);
        using var b = streamed.Trace(tokens, Everything);
        Assert.Equal(a.LastLogits(), b.LastLogits());
        Assert.Equal(a.ResidualNorm, b.ResidualNorm);
    }

    /// <summary>The 7-layer fp32 shape in shards of at most 40 kB, opened streamed.</summary>
    private Decoder.Decoder StreamedShards(string name, ulong seed, bool mapLayers, out string folder)
    {
        folder = Folder(name);
        RandomCheckpoint.Write(Spec("mha-deep"), folder, ScalarType.Float32, 40_000, seed);
        return Checkpoint.LoadStreamed(folder, mapLayers: mapLayers);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void AShardTruncatedAfterOpeningFailsTheForwardNamingFileAndTensor(bool mapLayers)
    {
        using var streamed = StreamedShards("truncated", seed: 13, mapLayers, out var folder);
        // The shard holding layer 5's query projection loses its second half while the model is open.
        var index = Checkpoint.OpenTensors(folder);
        var (file, _) = index[LayerStream.CheckpointName(5, "self_attn.q_proj.weight")];
        var shard = Path.GetFileName(file.Path);
        var firstInShard = index.Where(t => t.Value.File.Path == file.Path).Select(t => t.Key).ToArray();
        using (var handle = File.Open(file.Path, FileMode.Open, FileAccess.Write))
            handle.SetLength(handle.Length / 2);

        using var tokens = TestModels.Tokens(Prompt);
        var error = Assert.Throws<CheckpointException>(() => streamed.Trace(tokens, Everything));
        Assert.Contains(shard, error.Message);
        Assert.Contains("model.layers.", error.Message);
        Assert.Contains(
            error.Message.Split(' ').First(w => w.StartsWith("model.layers.", StringComparison.Ordinal)),
            firstInShard
        );
        // The decoder is still usable for what it can read: the same failure again, not a crash or a hang.
        Assert.Throws<CheckpointException>(() => streamed.Trace(tokens, Everything));
    }

    [Fact]
    public void LayersAreMappedWhenThePageCacheHoldsThemAndReadWhenItCannot()
    {
        // Layer bytes in bf16 from the configs by hand: the 7B's 30 layers of 4·4096² + 3·4096·11008 + 2·4096
        // parameters (11.3 GB); the 67B's 95 of 2·8192² + 2·8192·1024 + 3·8192·22016 + 2·8192 (GQA 8 KV heads; 131 GB).
        const long gib = 1L << 30;
        long sevenLayers = 30L * (4L * 4096 * 4096 + 3L * 4096 * 11008 + 2 * 4096) * 2;
        long sixtySevenLayers = 95L * (2L * 8192 * 8192 + 2L * 8192 * 1024 + 3L * 8192 * 22016 + 2 * 8192) * 2;
        var seven = Checkpoint.StreamedBytes(Core.Specs.ModelPresets.DeepSeekLlm7B, ScalarType.BFloat16);
        var sixtySeven = Checkpoint.StreamedBytes(Core.Specs.ModelPresets.DeepSeekLlm67B, ScalarType.BFloat16);
        Assert.True(Checkpoint.MapsLayers(sevenLayers, seven, 23 * gib)); // this machine: the 7B's layers stay cached
        Assert.False(Checkpoint.MapsLayers(sixtySevenLayers, sixtySeven, 23 * gib)); // 131 GB of layers cannot
        Assert.True(Checkpoint.MapsLayers(sixtySevenLayers, sixtySeven, 256 * gib));
        // The boundary: layers, streamed weights and 1 GiB exactly.
        Assert.True(Checkpoint.MapsLayers(sevenLayers, seven, sevenLayers + seven + gib));
        Assert.False(Checkpoint.MapsLayers(sevenLayers, seven, sevenLayers + seven + gib - 1));
    }

    [Fact]
    public void LayerFileBytesAreTheLayersTensorsOnly()
    {
        var spec = Spec("small");
        var folder = Folder("layer-bytes");
        RandomCheckpoint.Write(spec, folder, ScalarType.BFloat16, 12_000, seed: 15);
        var perLayer =
            2L * spec.HiddenSize * spec.HiddenSize
            + 2L * spec.HiddenSize * spec.HeadDim * spec.KeyValueHeads
            + 3L * spec.HiddenSize * spec.IntermediateSize
            + 2 * spec.HiddenSize;
        Assert.Equal(spec.Layers * perLayer * 2, Checkpoint.LayerFileBytes(Checkpoint.OpenTensors(folder)));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void AShardCutInsideItsLastPageFailsRatherThanReadingZeros(bool mapLayers)
    {
        // Mapped, the bytes after a cut inside a file's last 4 KiB page read as zeros without any fault: only the
        // file's length tells. The cut takes the last 8 bytes of the layer tensor that ends furthest into its file
        // (every other layer tensor of that file lies before the cut).
        using var streamed = StreamedShards("cut", seed: 14, mapLayers, out var folder);
        var (key, (file, entry)) = Checkpoint
            .OpenTensors(folder)
            .Where(t => t.Key.StartsWith("model.layers.", StringComparison.Ordinal))
            .Where(t =>
                (t.Value.File.DataStart + t.Value.Entry.End - 1) / 4096
                == (t.Value.File.DataStart + t.Value.Entry.End - 8) / 4096
            )
            .MaxBy(t => t.Value.File.DataStart + t.Value.Entry.End);
        using (var handle = File.Open(file.Path, FileMode.Open, FileAccess.Write))
            handle.SetLength(file.DataStart + entry.End - 8);

        using var tokens = TestModels.Tokens(Prompt);
        var error = Assert.Throws<CheckpointException>(() => streamed.Trace(tokens, Everything));
        Assert.Contains(Path.GetFileName(file.Path), error.Message);
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void NaNInALayerFailsTheForwardThatFirstReadsItNamingTheTensor()
    {
        // Opening a streamed checkpoint reads headers and the resident parts only; each layer's values are checked on
        // the first read of that layer, as a resident load checks them all.
        var folder = Folder("nan");
        RandomCheckpoint.Write(Spec("mha-deep"), folder, ScalarType.Float32, long.MaxValue, seed: 15);
        var name = LayerStream.CheckpointName(4, "mlp.up_proj.weight");
        var (file, entry) = Checkpoint.OpenTensors(folder)[name];
        using (var handle = File.Open(file.Path, FileMode.Open, FileAccess.Write))
        {
            handle.Position = file.DataStart + entry.Begin + 8 * sizeof(float);
            handle.Write(BitConverter.GetBytes(0x7FC0_0000u)); // one fp32 NaN
            handle.Write(BitConverter.GetBytes(0x7F80_0000u)); // one +Inf
        }
        using var streamed = Checkpoint.LoadStreamed(folder);
        using var tokens = TestModels.Tokens(Prompt);
        var reached = 0;
        var error = Assert.Throws<CheckpointException>(() =>
            streamed.Trace(tokens, Everything, onLayer: done => reached = done)
        );
        Assert.Contains(
            $"{name} in model.safetensors: 1 NaN and 1 infinite of {entry.Elements:N0} values",
            error.Message
        );
        Assert.True(reached <= 4, $"the forward ran past the bad layer ({reached} layers done)");
    }

    [Fact]
    public void AStreamedDecoderRefusesWhatNeedsItsLayersResident()
    {
        var folder = Folder("refuse");
        RandomCheckpoint.Write(TestModels.Small, folder, ScalarType.Float32, long.MaxValue, seed: 14);
        using var streamed = Checkpoint.LoadStreamed(folder);
        var error = Assert.Throws<InvalidOperationException>(() => streamed.Layers);
        Assert.Contains("streamed", error.Message);
    }
}

/// <summary>Memory measured on the whole process: run alone, not beside other test classes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    public const string Name = "process memory";
}

[Collection(ProcessMemoryCollection.Name)]
public sealed class StreamedMemoryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-stream-memory-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(true, true)] // mapped, pages released after use (a model the page cache cannot hold)
    [InlineData(true, false)] // mapped, pages kept (one it can)
    [InlineData(false, true)] // read into the buffers
    public void StreamingHoldsTwoLayersNotTheModel(bool mapLayers, bool releasePages)
    {
        if (!OperatingSystem.IsLinux())
            return; // RssAnon and RssFile are Linux's figures
        // 12 layers of 52 MB each in fp32 (d 1024, FFN 2816): 630 MB of layers on disk, deleted after.
        var spec = new ModelSpec(
            "stream-memory",
            Layers: 12,
            HiddenSize: 1024,
            IntermediateSize: 2816,
            AttentionHeads: 8,
            KeyValueHeads: 8,
            VocabularySize: 512,
            ContextLength: 64
        );
        var folder = Path.Combine(_dir.FullName, "model");
        RandomCheckpoint.Write(spec, folder, ScalarType.Float32, 200L << 20, seed: 21);
        var layerBytes = Core.Accounting.ParameterBreakdown.Of(spec).PerLayer.Total * sizeof(float);
        var allLayers = layerBytes * spec.Layers;

        Explorer.Model.Hosting.ProcessMemory.Trim();
        var before = Explorer.Model.Hosting.ProcessMemory.AnonymousResident();
        var filesBefore = Explorer.Model.Hosting.ProcessMemory.FileResident();
        long peak = before,
            filesPeak = filesBefore;
        using (var streamed = Checkpoint.LoadStreamed(folder, null, null, mapLayers, releasePages))
        using (var tokens = TestModels.Tokens(Enumerable.Range(0, 32).Select(i => (long)(i * 7 % 512)).ToArray()))
        using (var trace = streamed.Trace(tokens, TraceOptions.ForViews(32, attention: true), onLayer: _ =>
            {
                peak = Math.Max(peak, Explorer.Model.Hosting.ProcessMemory.AnonymousResident());
                filesPeak = Math.Max(filesPeak, Explorer.Model.Hosting.ProcessMemory.FileResident());
            }))
        {
            Assert.Equal(spec.Layers, trace.Layers);
        }
        // What streaming may hold: two layer buffers, the embedding and head (1 MB each here), the trace and the
        // forward's temporaries (a few MB at 32 tokens), and the allocator's slack; 64 MB covers the last three. All
        // twelve layers resident would be 630 MB.
        var grew = peak - before;
        Assert.True(
            grew < 2 * layerBytes + (64L << 20),
            $"streaming grew anonymous memory by {grew / 1048576.0:0} MB; two layers are "
                + $"{2 * layerBytes / 1048576.0:0} MB, all {spec.Layers} {allLayers / 1048576.0:0} MB"
        );
        // Mapped pages: released, at most the two layers in use (and a page at each end) stay mapped; kept, the
        // layers that passed stay mapped (the last one is counted as it passes, so 11 of 12 at least).
        var filesGrew = filesPeak - filesBefore;
        if (mapLayers && releasePages)
            Assert.True(
                filesGrew < 2 * layerBytes + (16L << 20),
                $"released, mapped file pages grew by {filesGrew / 1048576.0:0} MB"
            );
        if (mapLayers && !releasePages)
            Assert.True(
                filesGrew >= (spec.Layers - 1) * layerBytes,
                $"kept, mapped file pages grew by {filesGrew / 1048576.0:0} MB only"
            );
    }
}
