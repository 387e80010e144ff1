using System.Collections.Concurrent;
using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Training;

public enum JobState
{
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// <summary>One training run: what it trains, how far it got, its loss curve and per-layer gradient norms.</summary>
public sealed class TrainingJob(int id, string experiment, string name, ModelSpec spec, TrainingOptions options)
{
    private readonly object _gate = new();
    private readonly List<(int Step, double Loss)> _losses = [];
    private readonly List<(int Step, double[] Norms)> _gradients = [];
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Id { get; } = id;
    public string Experiment { get; } = experiment;
    public string Name { get; } = name;
    public ModelSpec Spec { get; } = spec;
    public TrainingOptions Options { get; } = options;
    public JobState State { get; private set; } = JobState.Queued;
    public string? Error { get; private set; }
    public TrainingProgress? Last { get; private set; }
    internal CancellationTokenSource Cancellation { get; } = new();

    /// <summary>Completes when the run has ended: done, failed or cancelled.</summary>
    public Task Finished => _finished.Task;

    public IReadOnlyList<(int Step, double Loss)> Losses
    {
        get
        {
            lock (_gate)
                return _losses.ToArray();
        }
    }
    public IReadOnlyList<(int Step, double[] Norms)> Gradients
    {
        get
        {
            lock (_gate)
                return _gradients.ToArray();
        }
    }

    internal void Record(TrainingProgress p)
    {
        lock (_gate)
        {
            Last = p;
            _losses.Add((p.Step, p.Loss));
            // Gradient norms at most 100 times per run, enough for a heatmap over steps.
            if (p.Step == 1 || p.Step % Math.Max(1, p.Steps / 100) == 0)
                _gradients.Add((p.Step, p.LayerGradientNorms));
        }
    }

    internal void Start() => State = JobState.Running;

    internal void End(JobState state, string? error = null)
    {
        State = state;
        Error = error;
        _finished.TrySetResult();
    }

    public void Cancel() => Cancellation.Cancel();
}

/// <summary>
/// Training runs of the whole process, one at a time on their own <see cref="WorkQueue"/>, the others waiting their
/// turn; each run's last checkpoint is written under <c>runs/</c> of the models folder. Not on the model host's queue:
/// a run takes minutes, and prompts must not wait for it.
/// </summary>
public sealed class TrainingJobs(string runsFolder) : IAsyncDisposable
{
    private readonly WorkQueue _queue = new(name: "training");
    private readonly ConcurrentDictionary<int, TrainingJob> _jobs = new();
    private readonly Lazy<MiniTokenizer> _tokenizer = new(MiniTokenizer.Create);
    private int _nextId;

    public event Action? Changed;

    public IReadOnlyList<TrainingJob> Jobs => _jobs.Values.OrderBy(j => j.Id).ToArray();

    public TrainingJob Enqueue(string experiment, string name, ModelSpec spec, TrainingOptions options)
    {
        var problems = options.Problems().Concat(SpecValidator.Validate(spec).Select(e => e.ToString())).ToArray();
        if (problems.Length > 0)
            throw new ArgumentException("Cannot train: " + string.Join("; ", problems) + ".");
        var job = new TrainingJob(Interlocked.Increment(ref _nextId), experiment, name, spec, options);
        _jobs[job.Id] = job;
        _ = _queue.RunAsync(() => Run(job), CancellationToken.None);
        Changed?.Invoke();
        return job;
    }

    private bool Run(TrainingJob job)
    {
        if (job.Cancellation.IsCancellationRequested)
        {
            job.End(JobState.Cancelled);
            Changed?.Invoke();
            return false;
        }
        job.Start();
        Changed?.Invoke();
        try
        {
            using var decoder = Decoder.Decoder.Create(
                job.Spec,
                new Decoder.DecoderOptions { Seed = (ulong)job.Options.Seed }
            );
            var progress = new SyncProgress<TrainingProgress>(p =>
            {
                job.Record(p);
                Changed?.Invoke();
            });
            var folder = Path.Combine(
                runsFolder,
                $"{job.Id:D3}-{string.Concat(job.Name.Where(char.IsAsciiLetterOrDigit))}"
            );
            Trainer
                .TrainAsync(
                    decoder,
                    new BuiltInCorpus(_tokenizer.Value),
                    job.Options,
                    folder,
                    progress,
                    job.Cancellation.Token
                )
                .GetAwaiter()
                .GetResult();
            job.End(JobState.Done);
        }
        catch (OperationCanceledException)
        {
            job.End(JobState.Cancelled);
        }
        catch (Exception e)
        {
            job.End(JobState.Failed, e.Message);
        }
        Changed?.Invoke();
        return true;
    }

    /// <summary>Cancels every run and waits for the one running to stop.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var job in _jobs.Values)
            job.Cancel();
        await _queue.DisposeAsync();
        foreach (var job in _jobs.Values)
            if (job.State is JobState.Queued)
                job.End(JobState.Cancelled);
    }
}
