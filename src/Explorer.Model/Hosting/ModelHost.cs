using System.Collections.Concurrent;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;

namespace Explorer.Model.Hosting;

/// <summary>
/// The live models of the server process: which are loaded and how (loading the default minis in the background,
/// checkpoints from the models folder only, unloading), and traced forwards of them: every one on one serial
/// <see cref="WorkQueue"/> (a request whose caller went away is skipped), recent ones kept in a <see
/// cref="TraceCache"/>, prompt length limited. Split training steps of a live model run through <see
/// cref="Pipeline.LivePipeline"/>.
/// </summary>
public sealed class ModelHost : IAsyncDisposable
{
    private readonly ModelHostOptions _options;
    private readonly ModelsFolder _folder;
    private readonly WorkQueue _queue;
    private readonly TraceCache _cache;
    private readonly TraceFlights _flights = new();
    private readonly ConcurrentDictionary<string, LiveModel> _models = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, ModelStatus> _status = new(StringComparer.OrdinalIgnoreCase);
    private long _forwards;

    public ModelHost(ModelHostOptions options)
    {
        if (options.MaxPromptTokens < 1)
            throw new ArgumentOutOfRangeException(
                nameof(options),
                options.MaxPromptTokens,
                "MaxPromptTokens must be at least 1."
            );
        if (options.QueueCapacity < 1)
            throw new ArgumentOutOfRangeException(
                nameof(options),
                options.QueueCapacity,
                "QueueCapacity must be at least 1."
            );
        _options = options;
        ProcessMemory.Configure(); // the process's malloc settings for libtorch's temporaries, before the first model
        _folder = new ModelsFolder(options.ModelsFolder, options.HubCache);
        _queue = new WorkQueue(options.QueueCapacity, "model worker");
        _cache = new TraceCache(options.TraceCacheBytes);
    }

    public ModelHostOptions Options => _options;
    public ModelsFolder Folder => _folder;

    /// <summary>Raised when a model's status changes (from a background thread).</summary>
    public event Action? Changed;

    public IReadOnlyList<ModelStatus> Models => _status.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Forwards run so far (cache hits excluded).</summary>
    public long Forwards => Interlocked.Read(ref _forwards);

    /// <summary>Requests whose caller went away (a cancelled run, a closed tab) before or while they ran.</summary>
    public long Cancelled => _queue.Cancelled;

    /// <summary>Requests queued or running on the worker now, and the most there have been at once.</summary>
    public int Waiting => _queue.Waiting;
    public int PeakWaiting => _queue.PeakWaiting;

    public long CachedBytes => _cache.Bytes;

    /// <summary>Starts loading the default models in the background; returns when they are ready or failed.</summary>
    public Task LoadDefaultModelsAsync() =>
        Task.WhenAll(
            MiniPresets.All.Select(spec =>
                LoadAsync(
                    spec.Name,
                    _options.TrainedDefaults && TrainedDefaults.Find(spec) is not null
                        ? $"trained ({TrainedDefaults.FolderName}/{spec.Name})"
                        : $"seed {_options.Seed}",
                    () => LiveModel.Mini(spec, _options.Seed, _options.Device, _options.TrainedDefaults)
                )
            )
        );

    /// <summary>
    /// Loads a checkpoint from inside the models folder or the hub cache, by the name the folder lists it under:
    /// resident when its weights fit in memory with room for traces, streamed layer by layer from its files otherwise
    /// (<see cref="Placement.Choose"/>), or as <paramref name="request"/> asks.
    /// </summary>
    public Task<ModelStatus> LoadCheckpointAsync(string name, PlacementRequest request = PlacementRequest.Auto)
    {
        var entry = _folder.Resolve(name);
        var modelName = entry.Revision is null ? new DirectoryInfo(entry.Path).Name : entry.Name;
        if (MiniPresets.TryGet(modelName, out _))
            throw new ArgumentException($"'{modelName}' is the name of a built-in model; rename the folder.");
        var source = entry.Revision is null
            ? entry.Path
            : $"hub cache {entry.Name} @ {entry.Revision[..Math.Min(12, entry.Revision.Length)]}";
        return LoadAsync(modelName, source, progress =>
        {
            var (_, _, resident, streamed) = Checkpoint.Footprint(entry.Path);
            var placement = Placement.Choose(
                request,
                resident,
                streamed,
                Checkpoint.AvailableMemoryBytes(),
                Placement.TraceRoom(_options.TraceCacheBytes)
            );
            var model = LiveModel.FromCheckpoint(
                entry.Path,
                placement.Streamed ? "cpu" : _options.Device,
                progress: progress,
                source: source,
                name: modelName,
                streamed: placement.Streamed
            );
            return (model, placement);
        });
    }

    private Task<ModelStatus> LoadAsync(string name, string source, Func<LiveModel> load) =>
        LoadAsync(name, source, _ => (load(), (Placement?)null));

    private async Task<ModelStatus> LoadAsync(
        string name,
        string source,
        Func<IProgress<double>, (LiveModel Model, Placement? Placement)> load
    )
    {
        if (_status.TryGetValue(name, out var existing) && existing.State == ModelState.Loading)
            return existing;
        SetStatus(new ModelStatus(name, ModelState.Loading, 0, "loading", null, source));
        try
        {
            var lastReported = 0.0;
            // Reported on the loading thread, at once: a Progress<T> posts its reports, and its last one could land
            // after the status below says Ready, leaving the model "Loading 100%" for good (seen once in CI).
            var progress = new SyncProgress<double>(fraction =>
            {
                // A status change per percent at most: a 7B checkpoint has hundreds of tensors.
                if (fraction - lastReported < 0.01 && fraction < 1)
                    return;
                lastReported = fraction;
                SetStatus(
                    new ModelStatus(name, ModelState.Loading, fraction, $"loading weights: {fraction:P0}", null, source)
                );
            });
            var (model, placement) = await Task.Run(() => load(progress));
            if (_models.TryRemove(name, out var old))
                await RunAsync(
                    () =>
                    {
                        old.Dispose();
                        return true;
                    },
                    CancellationToken.None
                );
            _models[name] = model;
            var status = new ModelStatus(
                name,
                ModelState.Ready,
                1,
                placement?.Reason ?? "ready",
                model.Spec,
                model.Source,
                placement,
                model.ConfigWarnings
            );
            SetStatus(status);
            WarmUpLater(model);
            return status;
        }
        catch (Exception e)
        {
            // Whatever went wrong (a bad file, no memory for a large checkpoint), the app stays up and says so.
            var status = new ModelStatus(name, ModelState.Failed, 0, ProblemText.Readable(e), null, source);
            SetStatus(status);
            return status;
        }
    }

    /// <summary>
    /// Queues the model's warm-up on the worker, ahead of any prompt sent after the load returns (a prompt sent during
    /// it waits for it, as it would for any forward). Not counted as a forward; a failure there is left to the first
    /// prompt to report. Not for a streamed model: its warm-up would read every layer from the files (a minute for a
    /// 67B shape from disk) while the first prompt waited, to save far less than that.
    /// </summary>
    private void WarmUpLater(LiveModel model)
    {
        if (!_options.WarmUp || model.Decoder.IsStreamed)
            return;
        _ = RunAsync(
                () =>
                {
                    model.WarmUp();
                    return true;
                },
                _queue.Stopping
            )
            .ContinueWith(t => _ = t.Exception, TaskContinuationOptions.NotOnRanToCompletion);
    }

    /// <summary>Unloads a model; its cached traces go when no view holds them.</summary>
    public async Task<bool> UnloadAsync(string name)
    {
        if (!_models.TryRemove(name, out var model))
            return _status.TryRemove(name, out _);
        _status.TryRemove(name, out _);
        _cache.RemoveModel(name);
        await RunAsync(
            () =>
            {
                model.Dispose();
                return true;
            },
            CancellationToken.None
        );
        Changed?.Invoke();
        return true;
    }

    public LiveModel? Find(string name) => _models.TryGetValue(name, out var model) ? model : null;

    /// <summary>Tokenizes a prompt for a model, enforcing the length limit.</summary>
    public int[] Tokenize(string model, string prompt) => Model(model).Encode(prompt, _options.MaxPromptTokens);

    /// <summary>Runs (or reuses) a traced forward of a prompt.</summary>
    public Task<TraceLease> TraceAsync(
        string model,
        string prompt,
        TraceOptions options,
        CancellationToken cancellation
    ) => TraceAsync(model, Tokenize(model, prompt), options, cancellation);

    /// <summary>
    /// Runs (or reuses) a traced forward of token ids: from the cache, by joining the same forward already under way
    /// (<see cref="TraceFlights"/>), or by running it. A streamed model reports each layer done to
    /// <paramref name="layers"/>; one whose files fail part-way is unloaded and listed as failed with the reason.
    /// </summary>
    public async Task<TraceLease> TraceAsync(
        string model,
        IReadOnlyList<int> tokens,
        TraceOptions options,
        CancellationToken cancellation,
        IProgress<int>? layers = null
    )
    {
        var live = Model(model);
        live.CheckTokens(tokens, _options.MaxPromptTokens);
        var key = Key(live, tokens, options);
        var ids = tokens.ToArray();
        while (true)
        {
            if (_cache.Lease(key) is { } hit)
                return hit;
            var flight = _flights.Join(
                key,
                flight => FlyAsync(live, key, ids, options, flight),
                layers,
                speculative: false
            )!;
            var entry = await _flights.WaitAsync(flight, cancellation);
            if (TraceLease.TryTake(entry) is { } lease)
                return lease;
            // Evicted by other traces before this request could lease it: run it again.
        }
    }

    /// <summary>
    /// Starts the traced forward a page being prerendered will ask for once its circuit is live, so the forward runs
    /// while the browser starts the page; true when one was started. Nothing runs for a trace already cached or
    /// flying, or while <see cref="TraceFlights.MaxSpeculative"/> other speculative forwards are: page loads alone
    /// never queue more than that. One that no live page has joined after <see cref="ModelHostOptions.PrefetchJoinMs"/>
    /// is stopped (between layers, for a streamed model).
    /// </summary>
    public bool Prefetch(string model, IReadOnlyList<int> tokens, TraceOptions options)
    {
        if (Find(model) is not { } live)
            return false;
        live.CheckTokens(tokens, _options.MaxPromptTokens);
        var key = Key(live, tokens, options);
        if (_cache.Contains(key))
            return false;
        var ids = tokens.ToArray();
        var flight = _flights.Join(key, flight => FlyAsync(live, key, ids, options, flight), null, speculative: true);
        if (flight is null)
            return false;
        // Its failure is the live page's to report, when it runs the same forward.
        flight.Done.ContinueWith(t => t.Exception, TaskContinuationOptions.OnlyOnFaulted);
        Task.Delay(TimeSpan.FromMilliseconds(Math.Max(0, _options.PrefetchJoinMs)))
            .ContinueWith(_ => _flights.StopIfUnjoined(flight), TaskScheduler.Default);
        return true;
    }

    /// <summary>Traced forwards under way (joined by any request for the same trace).</summary>
    public int InFlight => _flights.Count;

    private static string Key(LiveModel live, IReadOnlyList<int> tokens, TraceOptions options) =>
        $"{live.Name}|{string.Join(',', tokens)}|{Describe(options)}";

    /// <summary>One flight: the forward on the worker, then into the cache.</summary>
    private async Task<CachedTrace> FlyAsync(
        LiveModel live,
        string key,
        int[] ids,
        TraceOptions options,
        TraceFlights.Flight flight
    )
    {
        CachedTrace entry;
        try
        {
            Action<int>? onLayer = live.Decoder.IsStreamed ? layers => _flights.Report(flight, layers) : null;
            entry = await RunTraceAsync(live, key, ids, options, flight.Cancellation, onLayer);
        }
        catch (CheckpointException e) when (live.Decoder.IsStreamed)
        {
            await FailAsync(live, $"streaming stopped: {ProblemText.Readable(e)}");
            throw;
        }
        entry.Prefetched = _flights.Unjoined(flight);
        _cache.Add(entry);
        if (Forwards % 16 == 0)
            ProcessMemory.Trim();
        return entry;
    }

    private Task<CachedTrace> RunTraceAsync(
        LiveModel live,
        string key,
        int[] ids,
        TraceOptions options,
        CancellationToken cancellation,
        Action<int>? onLayer
    )
    {
        var queued = DateTimeOffset.UtcNow;
        return RunAsync(
            () =>
            {
                var started = DateTimeOffset.UtcNow;
                using var input = LiveModel.ToTensor(ids);
                var trace = live.Decoder.Trace(input, options, cancellation, onLayer);
                Interlocked.Increment(ref _forwards);
                var pieces = live.Tokenizer is null
                    ? ids.Select(i => i.ToString()).ToArray()
                    : TokenPieces.Display(live.Tokenizer, ids);
                var timings = new TraceTimings(queued, started, DateTimeOffset.UtcNow, Reused: false);
                return new CachedTrace(key, live.Name, ids, pieces, trace, timings);
            },
            cancellation,
            orphaned: entry => entry.Evict()
        ); // cancelled as it finished: never leased, so freed here
    }

    /// <summary>A model that cannot run any more: unloaded, its traces evicted, listed as failed with the
    /// reason.</summary>
    private async Task FailAsync(LiveModel live, string reason)
    {
        if (!_models.TryRemove(live.Name, out var model) || !ReferenceEquals(model, live))
            return;
        _cache.RemoveModel(live.Name);
        SetStatus(new ModelStatus(live.Name, ModelState.Failed, 0, reason, null, live.Source));
        await RunAsync(
            () =>
            {
                live.Dispose();
                return true;
            },
            CancellationToken.None
        );
    }

    private static string Describe(TraceOptions o) =>
        $"{o.Residual}{o.Attention}{o.LogitLens}{o.TopK}"
        + $":{(o.LensPositions is null ? "all" : string.Join(',', o.LensPositions))}"
        + $":{(o.DeferredLensPositions is null ? "none" : string.Join(',', o.DeferredLensPositions))}";

    /// <summary>
    /// Reads a trace's logit lens at its last deferred position on the model worker (<see
    /// cref="DecoderTrace.ReadLastLens"/>: from the states the forward kept). A no-op when it has been read.
    /// </summary>
    public Task<TraceTimings> ReadLastLensAsync(TraceLease lease, CancellationToken cancellation) =>
        lease.Trace.LastLens is not null
            ? Task.FromResult(TraceTimings.NotNeeded())
            : LensAsync(lease, (trace, decoder) => trace.ReadLastLens(decoder, cancellation));

    /// <summary>
    /// Completes a trace's logit lens at its deferred positions on the model worker (from the states the forward kept:
    /// no second forward). A no-op when it is complete already; cancelled between layer chunks.
    /// </summary>
    public Task<TraceTimings> CompleteLensAsync(TraceLease lease, CancellationToken cancellation) =>
        lease.Trace.FullLens is not null
            ? Task.FromResult(TraceTimings.NotNeeded())
            : LensAsync(lease, (trace, decoder) => trace.CompleteLens(decoder, cancellation));

    /// <summary>Runs lens work on a trace on the model worker, timed. The work gets the caller's cancellation to
    /// check between its blocks.</summary>
    private async Task<TraceTimings> LensAsync(TraceLease lease, Action<DecoderTrace, Decoder.Decoder> work)
    {
        var live = Model(lease.Model);
        // Its own lease, released only when the worker is done with the trace (so the wait is not abandoned on
        // cancellation: the lens stops at its next block instead), whatever the caller does with theirs.
        using var held = lease.Share();
        var queued = DateTimeOffset.UtcNow;
        var started = await RunAsync(
            () =>
            {
                var started = DateTimeOffset.UtcNow;
                work(held.Trace, live.Decoder);
                return started;
            },
            CancellationToken.None
        );
        return new TraceTimings(queued, started, DateTimeOffset.UtcNow, Reused: false);
    }

    /// <summary>
    /// Runs work with a live model on the model worker, after what is queued before it (an intervention, a sweep). The
    /// work gets the caller's cancellation to check between its steps; what it returns must hold no tensor (its dispose
    /// scope frees every one it made). Refused as <see cref="Model"/> refuses an unknown or unready model.
    /// </summary>
    public Task<T> RunWithAsync<T>(
        string model,
        Func<LiveModel, CancellationToken, T> work,
        CancellationToken cancellation
    )
    {
        var live = Model(model);
        return RunAsync(() => work(live, cancellation), cancellation);
    }

    internal LiveModel Model(string name)
    {
        if (_models.TryGetValue(name, out var model))
            return model;
        if (_status.TryGetValue(name, out var status))
            throw new InvalidOperationException(
                status.State == ModelState.Loading
                    ? $"{name} is still loading; try again in a moment."
                    : $"{name} failed to load: {status.Message}"
            );
        throw new ArgumentException($"Unknown model '{name}'. Loaded: {string.Join(", ", _models.Keys.Order())}.");
    }

    /// <summary>
    /// Runs work on the model worker, after what is queued before it. Refused when the queue is full. The work runs in
    /// a dispose scope: every tensor it makes and does not detach is held until it ends (never left to a finalizer,
    /// which could free one while a native call still reads it) and freed then.
    /// </summary>
    internal Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellation, Action<T>? orphaned = null) =>
        _queue.RunAsync(
            () =>
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                return work();
            },
            cancellation,
            orphaned
        );

    private void SetStatus(ModelStatus status)
    {
        _status[status.Name] = status;
        Changed?.Invoke();
    }

    public async ValueTask DisposeAsync()
    {
        await _queue.DisposeAsync();
        _cache.Clear();
        foreach (var model in _models.Values)
            model.Dispose();
        _models.Clear();
    }
}
