using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;

namespace Explorer.Model.Tests;

public sealed class ModelHostTests : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-host-");
    private ModelHost _host = null!;

    private static readonly TraceOptions Options = new() { LensPositions = [0] };

    public async Task InitializeAsync()
    {
        _host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = Path.Combine(_root.FullName, "models"),
                MaxPromptTokens = 64,
                Device = "cpu",
            }
        );
        Directory.CreateDirectory(_host.Folder.Root);
        await _host.LoadDefaultModelsAsync();
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _root.Delete(true);
    }

    [Fact]
    public void DefaultModelsLoad()
    {
        Assert.Equal(["deepseek-67b-mini", "deepseek-7b-mini"], _host.Models.Select(m => m.Name));
        Assert.All(_host.Models, m => Assert.Equal(ModelState.Ready, m.State));
        Assert.Equal(95, _host.Find("deepseek-67b-mini")!.Spec.Layers);
    }

    [Fact]
    public async Task SecondRequestComesFromTheCache()
    {
        using var first = await _host.TraceAsync(
            "deepseek-7b-mini",
            "Attention is all you need",
            Options,
            CancellationToken.None
        );
        using var second = await _host.TraceAsync(
            "deepseek-7b-mini",
            "Attention is all you need",
            Options,
            CancellationToken.None
        );
        Assert.False(first.FromCache);
        Assert.True(second.FromCache);
        Assert.Same(first.Trace, second.Trace);
        Assert.Equal(1, _host.Forwards);
        Assert.Equal("Attention␣is␣all␣you␣need", string.Concat(first.Pieces));
        using var other = await _host.TraceAsync(
            "deepseek-7b-mini",
            "Attention is all you need",
            Options with
            {
                TopK = 3,
            },
            CancellationToken.None
        );
        Assert.False(other.FromCache);
    }

    [Fact]
    public async Task CacheStaysWithinItsBudgetAndFreesEvictedTracesWhenReleased()
    {
        await using var host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                Device = "cpu",
                TraceCacheBytes = 1,
            }
        );
        await host.LoadDefaultModelsAsync();
        var first = await host.TraceAsync("deepseek-7b-mini", "one two three", Options, CancellationToken.None);
        using (var second = await host.TraceAsync("deepseek-7b-mini", "two", Options, CancellationToken.None))
        {
            // Over budget: the first was evicted but is still leased, so it stays usable.
            Assert.Equal(0f, first.Trace.HeadMap(0, 0)[1]); // causal: token 0 cannot see token 1
            // A budget of 1 byte keeps the newest trace only: exactly its bytes (both traces' if the budget were
            // ignored).
            var t = second.Trace;
            Assert.Equal(
                t.AttentionBytes
                    + t.DeferredLensBytes
                    + (long)t.Length * (t.Layers * 6 + t.Spec.VocabularySize) * sizeof(float),
                second.Bytes
            );
            Assert.Equal(second.Bytes, host.CachedBytes);
        }
        first.Dispose();
        Assert.Throws<InvalidOperationException>(() => first.Trace.HeadMap(0, 0)); // freed now
        using var again = await host.TraceAsync("deepseek-7b-mini", "one two three", Options, CancellationToken.None);
        Assert.False(again.FromCache);
    }

    [Fact]
    public async Task PromptOverTheLimitIsRefusedWithTheNumbers()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            _host.TraceAsync("deepseek-7b-mini", Enumerable.Repeat(7, 100).ToArray(), Options, CancellationToken.None)
        );
        Assert.Equal("The prompt is 100 tokens; deepseek-7b-mini takes at most 64 here.", e.Message);
        var prompt = string.Join(' ', Enumerable.Repeat("word", 100));
        Assert.Contains(
            "at most 64",
            (
                await Assert.ThrowsAsync<ArgumentException>(() =>
                    _host.TraceAsync("deepseek-7b-mini", prompt, Options, CancellationToken.None)
                )
            ).Message
        );
        await Assert.ThrowsAsync<ArgumentException>(() =>
            _host.TraceAsync("deepseek-7b-mini", "", Options, CancellationToken.None)
        );
        var bad = await Assert.ThrowsAsync<ArgumentException>(() =>
            _host.TraceAsync("deepseek-7b-mini", [1, 99999], Options, CancellationToken.None)
        );
        Assert.Contains("99999", bad.Message);
    }

    [Fact]
    public async Task UnknownModelListsTheLoadedOnes()
    {
        var e = await Assert.ThrowsAsync<ArgumentException>(() =>
            _host.TraceAsync("gpt-2", "hi", Options, CancellationToken.None)
        );
        Assert.Contains("deepseek-7b-mini", e.Message);
    }

    [Fact]
    public async Task CancelledRequestsAreSkipped()
    {
        using var gate = new ManualResetEventSlim();
        var blocker = _host.RunAsync(() => gate.Wait(TimeSpan.FromSeconds(30)), CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var waiting = _host.TraceAsync("deepseek-7b-mini", "never run", Options, cts.Token);
        cts.Cancel();
        gate.Set();
        await blocker;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        using var after = await _host.TraceAsync("deepseek-7b-mini", "runs", Options, CancellationToken.None);
        Assert.Equal(1, _host.Forwards); // the cancelled request never ran its forward
    }

    /// <summary>Holds the worker of <paramref name="host"/> (this fixture's by default) until the returned gate is set,
    /// so that requests queue behind it; returns once the worker has taken the blocker (the queue is empty
    /// again).</summary>
    private async Task<(ManualResetEventSlim Gate, Task<bool> Blocker)> HoldWorkerAsync(ModelHost? host = null)
    {
        var gate = new ManualResetEventSlim();
        var taken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var blocker = (host ?? _host).RunAsync(
            () =>
            {
                taken.SetResult();
                return gate.Wait(TimeSpan.FromSeconds(30));
            },
            CancellationToken.None
        );
        await taken.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return (gate, blocker);
    }

    [Fact]
    public async Task TwoRequestsForATraceUnderWayRunOneForward()
    {
        var (gate, blocker) = await HoldWorkerAsync();
        var first = _host.TraceAsync("deepseek-7b-mini", "one forward for two", Options, CancellationToken.None);
        var second = _host.TraceAsync("deepseek-7b-mini", "one forward for two", Options, CancellationToken.None);
        Assert.Equal(1, _host.InFlight);
        gate.Set();
        await blocker;
        using var a = await first;
        using var b = await second;
        Assert.Same(a.Trace, b.Trace);
        Assert.False(b.FromCache); // it waited for the forward, which ran once
        Assert.Equal(1, _host.Forwards);
        Assert.Equal(0, _host.InFlight);
        gate.Dispose();
    }

    [Fact]
    public async Task APrefetchedTraceIsJoinedByTheRunThatAsksForIt()
    {
        var tokens = _host.Tokenize("deepseek-7b-mini", "started while the page loads");
        var options = TraceOptions.ForViews(tokens.Length, attention: false);
        var (gate, blocker) = await HoldWorkerAsync();
        Assert.True(_host.Prefetch("deepseek-7b-mini", tokens, options));
        Assert.False(_host.Prefetch("deepseek-7b-mini", tokens, options)); // already flying
        var run = _host.TraceAsync("deepseek-7b-mini", tokens, options, CancellationToken.None);
        gate.Set();
        await blocker;
        using var lease = await run;
        Assert.Equal(1, _host.Forwards);
        Assert.False(_host.Prefetch("deepseek-7b-mini", tokens, options)); // cached now
        Assert.False(_host.Prefetch("no-such-model", tokens, options));
        gate.Dispose();

        // Landed before anyone asked: the first request takes it from the cache with its forward's marks, the next
        // as a plain cache hit.
        var later = _host.Tokenize("deepseek-7b-mini", "done before the page is live");
        options = TraceOptions.ForViews(later.Length, attention: false);
        Assert.True(_host.Prefetch("deepseek-7b-mini", later, options));
        var landed = Task.Run(async () =>
        {
            while (_host.InFlight > 0)
                await Task.Delay(10);
        });
        await landed.WaitAsync(TimeSpan.FromSeconds(30));
        using var first = await _host.TraceAsync("deepseek-7b-mini", later, options, CancellationToken.None);
        using var second = await _host.TraceAsync("deepseek-7b-mini", later, options, CancellationToken.None);
        Assert.False(first.FromCache);
        Assert.True(first.Timings.Ran > TimeSpan.Zero);
        Assert.True(second.FromCache);
        Assert.Equal(2, _host.Forwards);
    }

    [Fact]
    public async Task PageLoadsAloneQueueAtMostTwoForwards()
    {
        var (gate, blocker) = await HoldWorkerAsync();
        var started = Enumerable
            .Range(0, 4)
            .Select(i => _host.Tokenize("deepseek-7b-mini", $"a page load {i}"))
            .Select(t => _host.Prefetch("deepseek-7b-mini", t, Options))
            .ToArray();
        Assert.Equal([true, true, false, false], started);
        gate.Set();
        await blocker;
        // A flight queues its forward a moment after it starts (it yields first): wait for both to land.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (_host.InFlight > 0 && waited.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(10);
        Assert.Equal(0, _host.InFlight);
        Assert.Equal(2, _host.Forwards);
        gate.Dispose();
    }

    [Fact]
    public async Task AForwardStopsWhenTheLastRequestWaitingForItGoes()
    {
        var (gate, blocker) = await HoldWorkerAsync();
        using var leaving = new CancellationTokenSource();
        var left = _host.TraceAsync("deepseek-7b-mini", "still wanted", Options, leaving.Token);
        var stays = _host.TraceAsync("deepseek-7b-mini", "still wanted", Options, CancellationToken.None);
        using var alone = new CancellationTokenSource();
        var unwanted = _host.TraceAsync("deepseek-7b-mini", "nobody waits", Options, alone.Token);
        await leaving.CancelAsync();
        await alone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => left);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => unwanted);
        gate.Set();
        await blocker;
        using var lease = await stays; // the other request still waited for it: it ran
        Assert.Equal(1, await _host.RunAsync(() => _host.Forwards, CancellationToken.None));
        Assert.Equal(1, _host.Cancelled); // the forward nobody waited for was skipped
        gate.Dispose();
    }

    [Fact]
    public async Task TheWarmUpAfterALoadIsNotCountedAsAForward()
    {
        // Queued after the load returns, the probe runs after the minis' warm-ups (the worker keeps order).
        Assert.Equal(0, await _host.RunAsync(() => _host.Forwards, CancellationToken.None));
    }

    [Fact]
    public void WarmUpFitsAShortContextAndLeavesTheOutputsAsTheyWere()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Name = "short", ContextLength = 4, VocabularySize = 300 };
        using var model = LiveModel.Mini(spec, seed: 7, trained: false);
        int[] ids = [1, 2, 3];
        using var input = LiveModel.ToTensor(ids);
        using var before = model.Decoder.Trace(input, Options);
        model.WarmUp();
        using var after = model.Decoder.Trace(input, Options);
        Assert.Equal(before.LogitLens![0, 0].TopTokens, after.LogitLens![0, 0].TopTokens);
        Assert.Equal(before.LastLogits(), after.LastLogits());
    }

    [Fact]
    public async Task FullQueueRefusesWithABusyMessage()
    {
        await using var host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                Device = "cpu",
                QueueCapacity = 1,
                LoadDefaultModels = false,
            }
        );
        var (gate, running) = await HoldWorkerAsync(host);
        using var held = gate;
        var queued = host.RunAsync(() => true, CancellationToken.None);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            host.RunAsync(() => true, CancellationToken.None)
        );
        Assert.Contains("busy", e.Message);
        gate.Set();
        Assert.True(await running);
        Assert.True(await queued);
    }

    [Fact]
    public async Task TheLensIsReadOnTheWorkerLastPositionFirstAndACancelledReadLeavesItPending()
    {
        var tokens = _host.Tokenize("deepseek-7b-mini", "The lens comes later");
        using var lease = await _host.TraceAsync(
            "deepseek-7b-mini",
            tokens,
            TraceOptions.ForViews(tokens.Length, attention: false),
            CancellationToken.None
        );
        Assert.Null(lease.Trace.FullLens);
        Assert.Null(lease.Trace.LastLens);
        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                _host.ReadLastLensAsync(lease, cancelled.Token)
            );
            Assert.Null(lease.Trace.LastLens);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                _host.CompleteLensAsync(lease, cancelled.Token)
            );
        }
        Assert.Null(lease.Trace.FullLens);
        var last = await _host.ReadLastLensAsync(lease, CancellationToken.None);
        Assert.False(last.Reused);
        Assert.Equal((30, 1), (lease.Trace.LastLens!.GetLength(0), lease.Trace.LastLens.GetLength(1)));
        Assert.Null(lease.Trace.FullLens);
        Assert.True((await _host.ReadLastLensAsync(lease, CancellationToken.None)).Reused); // read once
        await _host.CompleteLensAsync(lease, CancellationToken.None);
        Assert.Equal(tokens.Length, lease.Trace.FullLens!.GetLength(1));
        Assert.Equal(30, lease.Trace.FullLens.GetLength(0));
    }

    [Fact]
    public async Task CheckpointsLoadFromTheModelsFolderOnly()
    {
        using (var decoder = TestModels.Build(TestModels.Small))
            Checkpoint.Save(decoder, Path.Combine(_host.Folder.Root, "small-ckpt"));
        Assert.Equal(["small-ckpt"], _host.Folder.Checkpoints().Select(c => c.Name));
        var status = await _host.LoadCheckpointAsync("small-ckpt");
        Assert.Equal(ModelState.Ready, status.State);
        using (var lease = await _host.TraceAsync("small-ckpt", [1, 2, 3], Options, CancellationToken.None))
            Assert.Equal(3, lease.Trace.Length);
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            _host.TraceAsync("small-ckpt", "text", Options, CancellationToken.None)
        ); // no tokenizer.json
        Assert.True(await _host.UnloadAsync("small-ckpt"));
        Assert.Null(_host.Find("small-ckpt"));

        var outside = Directory.CreateDirectory(Path.Combine(_root.FullName, "elsewhere"));
        Assert.Contains(
            "outside the models folder",
            (await Assert.ThrowsAsync<ArgumentException>(() => _host.LoadCheckpointAsync("../elsewhere"))).Message
        );
        Assert.Contains(
            "absolute path",
            (await Assert.ThrowsAsync<ArgumentException>(() => _host.LoadCheckpointAsync(outside.FullName))).Message
        );
        Directory.CreateSymbolicLink(Path.Combine(_host.Folder.Root, "sneaky"), outside.FullName);
        Assert.Contains(
            "outside the models folder",
            (await Assert.ThrowsAsync<ArgumentException>(() => _host.LoadCheckpointAsync("sneaky"))).Message
        );
        Assert.Contains(
            "no folder",
            (await Assert.ThrowsAsync<ArgumentException>(() => _host.LoadCheckpointAsync("missing"))).Message
        );
    }

    [Fact]
    public async Task ALoadReportsAllItsProgressBeforeItSaysReady()
    {
        // A report that lands after Ready would leave the model "Loading 100%" for good (seen once in CI).
        using (var decoder = TestModels.Build(TestModels.Small))
            Checkpoint.Save(decoder, Path.Combine(_host.Folder.Root, "watched"));
        var seen = new System.Collections.Concurrent.ConcurrentQueue<ModelStatus>();
        void Record()
        {
            if (_host.Models.FirstOrDefault(m => m.Name == "watched") is { } status)
                seen.Enqueue(status);
        }
        _host.Changed += Record;
        // Called without a synchronisation context (as a background job or the API would), where posted reports run
        // on the thread pool beside the load's own continuation.
        var loaded = await Task.Run(() => _host.LoadCheckpointAsync("watched"));
        var atReturn = seen.ToArray();
        _host.Changed -= Record;
        Assert.Equal(ModelState.Ready, loaded.State);
        Assert.Equal(ModelState.Ready, atReturn[^1].State);
        var loading = atReturn.Where(s => s.State == ModelState.Loading).Select(s => s.Progress).ToArray();
        Assert.Equal(1.0, loading[^1]); // the last weight's report came in before Ready
        Assert.Equal(loading.Order(), loading); // and in order
        Assert.Equal(ModelState.Ready, _host.Models.Single(m => m.Name == "watched").State);
    }

    [Fact]
    public async Task BrokenCheckpointFailsWithABannerAndTheHostStaysUsable()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_host.Folder.Root, "broken"));
        File.WriteAllText(Path.Combine(folder.FullName, "config.json"), HfConfigWriter.ToJson(TestModels.Small));
        File.WriteAllBytes(Path.Combine(folder.FullName, "model.safetensors"), [1, 2, 3]);
        var status = await _host.LoadCheckpointAsync("broken");
        Assert.Equal(ModelState.Failed, status.State);
        Assert.Contains("too short", status.Message);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            _host.TraceAsync("broken", [1], Options, CancellationToken.None)
        );
        Assert.Contains("failed to load", e.Message);
        using var fine = await _host.TraceAsync("deepseek-7b-mini", "still fine", Options, CancellationToken.None);
        Assert.NotNull(fine.Trace);
    }
}
