using System.Collections.Concurrent;
using System.Threading.Channels;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;

namespace Explorer.Model.Hosting;

/// <summary>
/// The live models of the server process. Loads the default minis in the background; runs every forward on one
/// worker through a bounded queue (a request whose caller went away is skipped); keeps recent traces within a
/// byte budget; limits prompt length; loads and unloads checkpoints from the models folder only.
/// </summary>
public sealed class ModelHost : IAsyncDisposable
{
    private readonly ModelHostOptions _options;
    private readonly ModelsFolder _folder;
    private readonly Channel<Func<Task>> _queue;
    private readonly Task _worker;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, LiveModel> _models = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, ModelStatus> _status = new(StringComparer.OrdinalIgnoreCase);
    private readonly LinkedList<CachedTrace> _cache = new(); // most recent first
    private readonly object _cacheGate = new();
    private long _cacheBytes;
    private long _forwards;
    private long _cancelled;
    private int _waiting;
    private int _peakWaiting;

    public ModelHost(ModelHostOptions options)
    {
        if (options.MaxPromptTokens < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxPromptTokens, "MaxPromptTokens must be at least 1.");
        if (options.QueueCapacity < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.QueueCapacity, "QueueCapacity must be at least 1.");
        _options = options;
        ProcessMemory.Configure(); // the process's malloc settings for libtorch's temporaries, before the first model
        _folder = new ModelsFolder(options.ModelsFolder, options.HubCache);
        _queue = Channel.CreateBounded<Func<Task>>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _worker = Task.Factory.StartNew(WorkAsync, _stopping.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    public ModelHostOptions Options => _options;
    public ModelsFolder Folder => _folder;

    /// <summary>Raised when a model's status changes (from a background thread).</summary>
    public event Action? Changed;

    public IReadOnlyList<ModelStatus> Models => _status.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Forwards run so far (cache hits excluded).</summary>
    public long Forwards => Interlocked.Read(ref _forwards);

    /// <summary>Requests whose caller went away (a cancelled run, a closed tab) before or while they ran.</summary>
    public long Cancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Requests queued or running on the worker now, and the most there have been at once.</summary>
    public int Waiting => Volatile.Read(ref _waiting);
    public int PeakWaiting => Volatile.Read(ref _peakWaiting);

    public long CachedBytes
    {
        get { lock (_cacheGate) return _cacheBytes; }
    }

    /// <summary>Starts loading the default models in the background; returns when they are ready or failed.</summary>
    public Task LoadDefaultModelsAsync() =>
        Task.WhenAll(MiniPresets.All.Select(spec => LoadAsync(spec.Name,
            _options.TrainedDefaults && TrainedDefaults.Find(spec) is not null ? $"trained ({TrainedDefaults.FolderName}/{spec.Name})" : $"seed {_options.Seed}",
            () => LiveModel.Mini(spec, _options.Seed, _options.Device, _options.TrainedDefaults))));

    /// <summary>Loads a checkpoint from inside the models folder or the hub cache, by the name the folder lists it under.</summary>
    public Task<ModelStatus> LoadCheckpointAsync(string name)
    {
        var entry = _folder.Resolve(name);
        var modelName = entry.Revision is null ? new DirectoryInfo(entry.Path).Name : entry.Name;
        if (MiniPresets.TryGet(modelName, out _))
            throw new ArgumentException($"'{modelName}' is the name of a built-in model; rename the folder.");
        var source = entry.Revision is null ? entry.Path : $"hub cache {entry.Name} @ {entry.Revision[..Math.Min(12, entry.Revision.Length)]}";
        return LoadAsync(modelName, source, progress => LiveModel.FromCheckpoint(entry.Path, _options.Device, progress: progress, source: source, name: modelName));
    }

    private Task<ModelStatus> LoadAsync(string name, string source, Func<LiveModel> load) => LoadAsync(name, source, _ => load());

    private async Task<ModelStatus> LoadAsync(string name, string source, Func<IProgress<double>, LiveModel> load)
    {
        if (_status.TryGetValue(name, out var existing) && existing.State == ModelState.Loading)
            return existing;
        SetStatus(new ModelStatus(name, ModelState.Loading, 0, "loading", null, source));
        try
        {
            var lastReported = 0.0;
            var progress = new Progress<double>(fraction =>
            {
                // A status change per percent at most: a 7B checkpoint has hundreds of tensors.
                if (fraction - lastReported < 0.01 && fraction < 1)
                    return;
                lastReported = fraction;
                SetStatus(new ModelStatus(name, ModelState.Loading, fraction, $"loading weights: {fraction:P0}", null, source));
            });
            var model = await Task.Run(() => load(progress));
            if (_models.TryRemove(name, out var old))
                await RunAsync(() => { old.Dispose(); return true; }, CancellationToken.None);
            _models[name] = model;
            var status = new ModelStatus(name, ModelState.Ready, 1, "ready", model.Spec, model.Source);
            SetStatus(status);
            WarmUpLater(model);
            return status;
        }
        catch (Exception e)
        {
            // Whatever went wrong (a bad file, no memory for a large checkpoint), the app stays up and says so.
            var status = new ModelStatus(name, ModelState.Failed, 0, e.Message, null, source);
            SetStatus(status);
            return status;
        }
    }

    /// <summary>
    /// Queues the model's warm-up on the worker, ahead of any prompt sent after the load returns (a prompt sent during
    /// it waits for it, as it would for any forward). Not counted as a forward; a failure there is left to the first
    /// prompt to report.
    /// </summary>
    private void WarmUpLater(LiveModel model)
    {
        if (!_options.WarmUp)
            return;
        _ = RunAsync(() => { model.WarmUp(); return true; }, _stopping.Token)
            .ContinueWith(t => _ = t.Exception, TaskContinuationOptions.NotOnRanToCompletion);
    }

    /// <summary>Unloads a model; its cached traces go when no view holds them.</summary>
    public async Task<bool> UnloadAsync(string name)
    {
        if (!_models.TryRemove(name, out var model))
            return _status.TryRemove(name, out _);
        _status.TryRemove(name, out _);
        lock (_cacheGate)
            foreach (var entry in _cache.Where(e => string.Equals(e.Model, name, StringComparison.OrdinalIgnoreCase)).ToArray())
                Remove(entry);
        await RunAsync(() => { model.Dispose(); return true; }, CancellationToken.None);
        Changed?.Invoke();
        return true;
    }

    public LiveModel? Find(string name) => _models.TryGetValue(name, out var model) ? model : null;

    /// <summary>Tokenizes a prompt for a model, enforcing the length limit.</summary>
    public int[] Tokenize(string model, string prompt) => Model(model).Encode(prompt, _options.MaxPromptTokens);

    /// <summary>Runs (or reuses) a traced forward of a prompt.</summary>
    public Task<TraceLease> TraceAsync(string model, string prompt, TraceOptions options, CancellationToken cancellation) =>
        TraceAsync(model, Tokenize(model, prompt), options, cancellation);

    /// <summary>Runs (or reuses) a traced forward of token ids.</summary>
    public async Task<TraceLease> TraceAsync(string model, IReadOnlyList<int> tokens, TraceOptions options, CancellationToken cancellation)
    {
        var live = Model(model);
        live.CheckTokens(tokens, _options.MaxPromptTokens);
        var key = $"{live.Name}|{string.Join(',', tokens)}|{Describe(options)}";
        lock (_cacheGate)
        {
            var hit = _cache.FirstOrDefault(e => e.Key == key);
            if (hit is not null)
            {
                _cache.Remove(hit);
                _cache.AddFirst(hit);
                return new TraceLease(hit, fromCache: true);
            }
        }
        var ids = tokens.ToArray();
        var entry = await RunAsync(() =>
        {
            using var input = LiveModel.ToTensor(ids);
            var trace = live.Decoder.Trace(input, options, cancellation);
            Interlocked.Increment(ref _forwards);
            var pieces = live.Tokenizer is null ? ids.Select(i => i.ToString()).ToArray() : TokenPieces.Display(live.Tokenizer, ids);
            return new CachedTrace(key, live.Name, ids, pieces, trace);
        }, cancellation);
        var lease = new TraceLease(entry, fromCache: false);
        Add(entry);
        if (Forwards % 16 == 0)
            ProcessMemory.Trim();
        return lease;
    }

    private static string Describe(TraceOptions o) =>
        $"{o.Residual}{o.Attention}{o.LogitLens}{o.TopK}:{(o.LensPositions is null ? "all" : string.Join(',', o.LensPositions))}" +
        $":{(o.DeferredLensPositions is null ? "none" : string.Join(',', o.DeferredLensPositions))}";

    /// <summary>
    /// Completes a trace's logit lens at its deferred positions on the model worker (from the states the forward kept:
    /// no second forward). A no-op when it is complete already; cancelled between layer chunks.
    /// </summary>
    public async Task CompleteLensAsync(TraceLease lease, CancellationToken cancellation)
    {
        if (lease.Trace.FullLens is not null)
            return;
        var live = Model(lease.Model);
        // Its own lease, released only when the worker is done with the trace (so the wait is not abandoned on
        // cancellation: the lens stops at its next block instead), whatever the caller does with theirs.
        using var held = lease.Share();
        await RunAsync(() => held.Trace.CompleteLens(live.Decoder, cancellation), CancellationToken.None);
    }

    private LiveModel Model(string name)
    {
        if (_models.TryGetValue(name, out var model))
            return model;
        if (_status.TryGetValue(name, out var status))
            throw new InvalidOperationException(status.State == ModelState.Loading
                ? $"{name} is still loading; try again in a moment."
                : $"{name} failed to load: {status.Message}");
        throw new ArgumentException($"Unknown model '{name}'. Loaded: {string.Join(", ", _models.Keys.Order())}.");
    }

    /// <summary>
    /// Times every unit of a loaded model on the worker for a split run of <paramref name="stages"/> stage threads on
    /// this machine (<see cref="Pipeline.UnitProfiler.ProfileForRun"/>): the planner's measured cost basis, and the
    /// measured hand-off between stages.
    /// </summary>
    public Task<(IReadOnlyList<Explorer.Core.Pipeline.PipelineUnit> Units, double HandOffMs)> ProfileAsync(string model, int microBatchSize, int sequenceLength,
        int stages, Explorer.Core.Pipeline.ScheduleKind schedule, CancellationToken cancellation)
    {
        var live = Model(model);
        if (sequenceLength > live.Spec.ContextLength)
            throw new ArgumentException($"Sequence length {sequenceLength} is over {model}'s context of {live.Spec.ContextLength}.");
        if (stages < 1 || stages > live.Spec.Layers + 3)
            throw new ArgumentException($"{stages} stages: {model} has {live.Spec.Layers + 3} units, so 1 to {live.Spec.Layers + 3}.");
        // Runs for real support GPipe and 1F1B; other schedules are timed as 1F1B holds its micro-batches.
        var held = schedule is Explorer.Core.Pipeline.ScheduleKind.GPipe ? schedule : Explorer.Core.Pipeline.ScheduleKind.OneFOneB;
        return RunAsync(() => Pipeline.UnitProfiler.ProfileForRun(live.Decoder, microBatchSize, sequenceLength, stages, held,
            sequences => TrainingBatch(live, sequences, sequenceLength)), cancellation);
    }

    /// <summary>Built-in corpus text for a mini tokenizer's models, random tokens for other vocabularies; the same every call.</summary>
    private static long[,] TrainingBatch(LiveModel live, int sequences, int sequenceLength)
    {
        var random = new Random(3);
        if (live.Tokenizer is MiniTokenizer mini)
            return new Training.BuiltInCorpus(mini).Batch(random, sequences, sequenceLength);
        var batch = new long[sequences, sequenceLength + 1];
        for (var b = 0; b < sequences; b++)
            for (var t = 0; t <= sequenceLength; t++)
                batch[b, t] = random.Next(live.Spec.VocabularySize);
        return batch;
    }

    /// <summary>
    /// Runs one training step of a loaded model split at <paramref name="stageFirstUnits"/>, each stage on its own
    /// thread (GPipe or 1F1B), on a batch of built-in corpus text (random tokens for other vocabularies). The model's
    /// gradients are cleared afterwards; its weights do not change.
    /// </summary>
    public Task<Pipeline.PipelineRunResult> RunPipelineStepAsync(string model, IReadOnlyList<int> stageFirstUnits,
        Explorer.Core.Pipeline.ScheduleKind schedule, int microBatches, int microBatchSize, int sequenceLength, CancellationToken cancellation)
    {
        var live = Model(model);
        return RunAsync(() =>
        {
            var batch = TrainingBatch(live, microBatches * microBatchSize, sequenceLength);
            live.Decoder.train();
            try
            {
                return Pipeline.PipelineRun.TrainStep(live.Decoder, batch, stageFirstUnits, schedule, microBatches);
            }
            finally
            {
                live.Decoder.zero_grad();
                live.Decoder.eval();
            }
        }, cancellation);
    }

    /// <summary>Runs work on the model worker, after what is queued before it. Refused when the queue is full.</summary>
    internal async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellation)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Func<Task> item = () =>
        {
            try
            {
                if (cancellation.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _cancelled); // the caller went away while it waited: skip the work
                    done.TrySetCanceled(cancellation);
                }
                else
                {
                    try
                    {
                        done.TrySetResult(work());
                    }
                    catch (OperationCanceledException e)
                    {
                        Interlocked.Increment(ref _cancelled); // stopped between layers
                        done.TrySetCanceled(e.CancellationToken);
                    }
                    catch (Exception e)
                    {
                        done.TrySetException(e);
                    }
                }
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
            return Task.CompletedTask;
        };
        var waiting = Interlocked.Increment(ref _waiting);
        if (!_queue.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _waiting);
            throw new InvalidOperationException($"The model is busy: {_options.QueueCapacity} requests are already waiting. Try again shortly.");
        }
        for (var peak = Volatile.Read(ref _peakWaiting); waiting > peak; peak = Volatile.Read(ref _peakWaiting))
            Interlocked.CompareExchange(ref _peakWaiting, waiting, peak);
        using var registration = cancellation.Register(() => done.TrySetCanceled(cancellation));
        return await done.Task;
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var item in _queue.Reader.ReadAllAsync(_stopping.Token))
                await item();
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Add(CachedTrace entry)
    {
        lock (_cacheGate)
        {
            _cache.AddFirst(entry);
            _cacheBytes += entry.Bytes;
            while (_cacheBytes > _options.TraceCacheBytes && _cache.Count > 1)
                Remove(_cache.Last!.Value);
        }
    }

    private void Remove(CachedTrace entry)
    {
        if (_cache.Remove(entry))
        {
            _cacheBytes -= entry.Bytes;
            entry.Evict();
        }
    }

    private void SetStatus(ModelStatus status)
    {
        _status[status.Name] = status;
        Changed?.Invoke();
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        try
        {
            await _worker;
        }
        catch (OperationCanceledException)
        {
        }
        lock (_cacheGate)
            foreach (var entry in _cache.ToArray())
                Remove(entry);
        foreach (var model in _models.Values)
            model.Dispose();
        _models.Clear();
        _stopping.Dispose();
    }
}
