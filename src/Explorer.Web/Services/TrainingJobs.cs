using System.Collections.Concurrent;
using System.Threading.Channels;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;

namespace Explorer.Web.Services;

public enum JobState { Queued, Running, Done, Failed, Cancelled }

/// <summary>One training run: what it trains, how far it got, its loss curve and per-layer gradient norms.</summary>
public sealed class TrainingJob(int id, string experiment, string name, ModelSpec spec, TrainingOptions options)
{
    private readonly object _gate = new();
    private readonly List<(int Step, double Loss)> _losses = [];
    private readonly List<(int Step, double[] Norms)> _gradients = [];

    public int Id { get; } = id;
    public string Experiment { get; } = experiment;
    public string Name { get; } = name;
    public ModelSpec Spec { get; } = spec;
    public TrainingOptions Options { get; } = options;
    public JobState State { get; internal set; } = JobState.Queued;
    public string? Error { get; internal set; }
    public TrainingProgress? Last { get; private set; }
    internal CancellationTokenSource Cancellation { get; } = new();

    public IReadOnlyList<(int Step, double Loss)> Losses { get { lock (_gate) return _losses.ToArray(); } }
    public IReadOnlyList<(int Step, double[] Norms)> Gradients { get { lock (_gate) return _gradients.ToArray(); } }

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

    public void Cancel() => Cancellation.Cancel();
}

/// <summary>Training jobs of the whole process: one runs at a time, the others wait their turn.</summary>
public sealed class TrainingJobs : IAsyncDisposable
{
    private readonly Channel<TrainingJob> _queue = Channel.CreateUnbounded<TrainingJob>();
    private readonly ConcurrentDictionary<int, TrainingJob> _jobs = new();
    private readonly Task _worker;
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _runsFolder;
    private readonly Lazy<MiniTokenizer> _tokenizer = new(MiniTokenizer.Create);
    private int _nextId;

    public TrainingJobs(ModelHost host)
    {
        _runsFolder = Path.Combine(host.Folder.Root, "runs");
        _worker = Task.Run(WorkAsync);
    }

    public event Action? Changed;

    public IReadOnlyList<TrainingJob> Jobs => _jobs.Values.OrderBy(j => j.Id).ToArray();

    public TrainingJob Enqueue(string experiment, string name, ModelSpec spec, TrainingOptions options)
    {
        var problems = options.Problems().Concat(SpecValidator.Validate(spec).Select(e => e.ToString())).ToArray();
        if (problems.Length > 0)
            throw new ArgumentException("Cannot train: " + string.Join("; ", problems) + ".");
        var job = new TrainingJob(Interlocked.Increment(ref _nextId), experiment, name, spec, options);
        _jobs[job.Id] = job;
        _queue.Writer.TryWrite(job);
        Changed?.Invoke();
        return job;
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var job in _queue.Reader.ReadAllAsync(_stopping.Token))
                await RunAsync(job);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RunAsync(TrainingJob job)
    {
        if (job.Cancellation.IsCancellationRequested)
        {
            job.State = JobState.Cancelled;
            Changed?.Invoke();
            return;
        }
        job.State = JobState.Running;
        Changed?.Invoke();
        try
        {
            using var decoder = Decoder.Create(job.Spec, new DecoderOptions { Seed = (ulong)job.Options.Seed });
            var progress = new Explorer.Model.SyncProgress<TrainingProgress>(p =>
            {
                job.Record(p);
                Changed?.Invoke();
            });
            var folder = Path.Combine(_runsFolder, $"{job.Id:D3}-{string.Concat(job.Name.Where(char.IsAsciiLetterOrDigit))}");
            await Task.Run(() => Trainer.TrainAsync(decoder, new BuiltInCorpus(_tokenizer.Value), job.Options, folder, progress, job.Cancellation.Token));
            job.State = JobState.Done;
        }
        catch (OperationCanceledException)
        {
            job.State = JobState.Cancelled;
        }
        catch (Exception e)
        {
            job.State = JobState.Failed;
            job.Error = e.Message;
        }
        Changed?.Invoke();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var job in _jobs.Values)
            job.Cancel();
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        try
        {
            await _worker;
        }
        catch (OperationCanceledException)
        {
        }
    }
}
