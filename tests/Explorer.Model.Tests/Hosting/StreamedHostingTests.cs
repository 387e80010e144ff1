using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Tests.Hosting;

/// <summary>Where the host puts a checkpoint's layers, and a streamed model in the host: progress, equal traces,
/// failure.</summary>
public sealed class StreamedHostingTests : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-host-stream-");
    private ModelHost _host = null!;
    private static readonly ModelSpec Spec = TestModels.Small with { Layers = 5, VocabularySize = 300 };

    public Task InitializeAsync()
    {
        _host = new ModelHost(Options(Path.Combine(_root.FullName, "models")));
        Directory.CreateDirectory(_host.Folder.Root);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _root.Delete(true);
    }

    /// <summary>A host of <paramref name="folder"/>'s checkpoints on the CPU: no default models, no warm-up.</summary>
    private static ModelHostOptions Options(string folder) =>
        new()
        {
            ModelsFolder = folder,
            Device = "cpu",
            LoadDefaultModels = false,
            WarmUp = false,
        };

    private string Write(string name, long maxShardBytes = long.MaxValue)
    {
        var folder = Path.Combine(_host.Folder.Root, name);
        RandomCheckpoint.Write(Spec, folder, ScalarType.Float32, maxShardBytes, seed: 31);
        return folder;
    }

    [Fact]
    public void ResidentWhenWeightsAndTraceRoomFitStreamedOtherwiseOrWhenAsked()
    {
        const long gib = 1L << 30;
        // 13.8 GiB of weights (a 7B in bf16) and 2 GiB of trace room: 15.8 GiB needed.
        var fits = Placement.Choose(PlacementRequest.Auto, 138 * gib / 10, gib, 16 * gib, 2 * gib);
        Assert.False(fits.Streamed);
        Assert.StartsWith(
            "resident: its 13.8 GiB of weights fit in the 16.0 GiB available with 2.00 GiB left for traces",
            fits.Reason
        );
        var tight = Placement.Choose(PlacementRequest.Auto, 138 * gib / 10, gib, 15 * gib, 2 * gib);
        Assert.True(tight.Streamed);
        Assert.Contains("do not fit in the 15.0 GiB available; streaming holds 1.00 GiB", tight.Reason);
        // Asked: the request wins either way, and says whether the model would have fit.
        Assert.True(Placement.Choose(PlacementRequest.Streamed, gib, gib / 4, 64 * gib, gib).Streamed);
        Assert.Contains("would fit", Placement.Choose(PlacementRequest.Streamed, gib, gib / 4, 64 * gib, gib).Reason);
        Assert.False(Placement.Choose(PlacementRequest.Resident, 100 * gib, gib, 16 * gib, gib).Streamed);
        // The room is the trace cache's budget and 1 GiB of working memory.
        Assert.Equal(3 * gib, Placement.TraceRoom(2 * gib));
    }

    [Fact]
    public async Task AStreamedModelIsNotWarmedUpSoTheFirstPromptDoesNotWaitForAPassOverItsFiles()
    {
        var options = Options(_host.Folder.Root);
        options.WarmUp = true;
        await using var host = new ModelHost(options);
        Write("cold");
        Write("warm");
        await host.LoadCheckpointAsync("cold", PlacementRequest.Streamed);
        await host.LoadCheckpointAsync("warm", PlacementRequest.Resident);
        // Queued after both loads, this runs after any warm-up they queued (the worker keeps order).
        var read = await host.RunAsync(
            () => ((LayerStream)host.Find("cold")!.Decoder.LayerSource!).Counters.Bytes,
            CancellationToken.None
        );
        Assert.Equal(0, read);
    }

    [Fact]
    public async Task AStreamedModelTracesWhatItsResidentLoadTracesAndSaysEachLayer()
    {
        Write("stream-me", maxShardBytes: 30_000);
        Write("keep-me");
        var streamed = await _host.LoadCheckpointAsync("stream-me", PlacementRequest.Streamed);
        var resident = await _host.LoadCheckpointAsync("keep-me"); // small: auto keeps it resident
        Assert.Equal(ModelState.Ready, streamed.State);
        Assert.True(streamed.Streamed);
        Assert.StartsWith("streamed, as asked", streamed.Message);
        Assert.False(resident.Streamed);
        Assert.StartsWith("resident:", resident.Message);

        var layers = new List<int>();
        var progress = new SynchronousProgress<int>(layers.Add);
        var tokens = new[] { 5, 17, 250, 3, 99, 42 };
        var options = TraceOptions.ForViews(tokens.Length, attention: true);
        using var a = await _host.TraceAsync("stream-me", tokens, options, CancellationToken.None, progress);
        using var b = await _host.TraceAsync("keep-me", tokens, options, CancellationToken.None, progress);
        Assert.Equal([1, 2, 3, 4, 5], layers); // the streamed one only, layer by layer
        Assert.Equal(b.Trace.LastLogits(), a.Trace.LastLogits());
        Assert.Equal(b.Trace.ResidualNorm, a.Trace.ResidualNorm);
        Assert.Equal(b.Trace.HeadEntropy, a.Trace.HeadEntropy);
    }

    [Fact]
    public async Task APageLoadStartsAStreamedForwardAndNoPageJoiningItStopsIt()
    {
        var hostOptions = Options(_host.Folder.Root);
        hostOptions.PrefetchJoinMs = 300;
        await using var host = new ModelHost(hostOptions);
        Write("streamed", maxShardBytes: 30_000);
        await host.LoadCheckpointAsync("streamed", PlacementRequest.Streamed);
        int[] tokens = [5, 17, 250, 3],
            other = [9, 8, 7, 6];
        var options = TraceOptions.ForViews(tokens.Length, attention: false);

        // The live page's run takes the forward its prerender started: one forward.
        Assert.True(host.Prefetch("streamed", tokens, options));
        using (await host.TraceAsync("streamed", tokens, options, CancellationToken.None))
            Assert.Equal(1, host.Forwards);

        // No page asks within the window, while the worker is held: the flight ends, and its forward never runs.
        using var gate = new ManualResetEventSlim();
        var taken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocker = host.RunAsync(
            () =>
            {
                taken.SetResult();
                return gate.Wait(TimeSpan.FromSeconds(30));
            },
            CancellationToken.None
        );
        await taken.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(host.Prefetch("streamed", other, options));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (host.InFlight > 0 && waited.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(10);
        Assert.Equal(0, host.InFlight);
        Assert.True(waited.Elapsed >= TimeSpan.FromMilliseconds(250), $"stopped after {waited.Elapsed}");
        gate.Set();
        Assert.True(await blocker);
        await host.RunAsync(() => true, CancellationToken.None); // whatever was queued behind the blocker has run
        Assert.Equal(1, host.Forwards);
        // Asked for later, it runs.
        using (await host.TraceAsync("streamed", other, options, CancellationToken.None))
            Assert.Equal(2, host.Forwards);
    }

    [Fact]
    public async Task AShardLostMidwayFailsTheForwardAndListsTheModelAsFailedWithTheReason()
    {
        var folder = Write("fragile", maxShardBytes: 30_000);
        Write("sturdy");
        await _host.LoadCheckpointAsync("fragile", PlacementRequest.Streamed);
        await _host.LoadCheckpointAsync("sturdy", PlacementRequest.Streamed);
        var shard = Checkpoint.OpenTensors(folder)[LayerStream.CheckpointName(3, "mlp.down_proj.weight")].File.Path;
        using (var handle = File.Open(shard, FileMode.Open, FileAccess.Write))
            handle.SetLength(handle.Length / 3);

        var tokens = new[] { 5, 17, 250 };
        var error = await Assert.ThrowsAsync<CheckpointException>(() =>
            _host.TraceAsync("fragile", tokens, TraceOptions.ForViews(3), CancellationToken.None)
        );
        Assert.Contains(Path.GetFileName(shard), error.Message);
        var status = _host.Models.Single(m => m.Name == "fragile");
        Assert.Equal(ModelState.Failed, status.State);
        Assert.Contains(Path.GetFileName(shard), status.Message);
        Assert.Null(_host.Find("fragile"));
        // The app carries on: the other model runs.
        using var other = await _host.TraceAsync("sturdy", tokens, TraceOptions.ForViews(3), CancellationToken.None);
        Assert.Equal(Spec.VocabularySize, other.Trace.LastLogits().Length);
    }

    /// <summary>Reports on the caller's thread, at once (Progress&lt;T&gt; posts to a context).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value)
        {
            lock (this)
                report(value);
        }
    }
}
