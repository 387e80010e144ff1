using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Training;

namespace Explorer.Model.Tests.Training;

public sealed class TrainingJobsTests : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-jobs-");
    private ModelHost _host = null!;
    private TrainingJobs _jobs = null!;

    private static readonly ModelSpec Tiny = new("tiny", 2, 32, 64, 4, 2, MiniPresets.Vocabulary, 64);
    private static readonly TrainingOptions Short = new()
    {
        Steps = 6,
        BatchSize = 2,
        SequenceLength = 16,
        WarmupSteps = 1,
        CheckpointEvery = 0,
    };

    public Task InitializeAsync()
    {
        _host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                LoadDefaultModels = false,
                Device = "cpu",
            }
        );
        _jobs = new TrainingJobs(Path.Combine(_host.Folder.Root, "runs"));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _jobs.DisposeAsync();
        await _host.DisposeAsync();
        _root.Delete(true);
    }

    /// <summary>A run's end, or a test failure after a minute (a loaded 2-core machine trains these in
    /// seconds).</summary>
    private static Task Ended(TrainingJob job) => job.Finished.WaitAsync(TimeSpan.FromMinutes(1));

    [Fact]
    public async Task JobsRunOneAtATimeAndRecordTheirCurves()
    {
        var first = _jobs.Enqueue("x", "a", Tiny, Short);
        var second = _jobs.Enqueue("x", "b", Tiny, Short);
        var overlapped = false;
        _jobs.Changed += () => overlapped |= first.State == JobState.Running && second.State == JobState.Running;
        await Ended(second);
        Assert.Equal(JobState.Done, second.State);
        Assert.Equal(JobState.Done, first.State);
        Assert.False(overlapped);
        Assert.Equal(Enumerable.Range(1, 6), first.Losses.Select(l => l.Step));
        Assert.All(first.Gradients, g => Assert.Equal(2, g.Norms.Length));
        // The last checkpoint of each run is written under the models folder.
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(_root.FullName, "runs")).Length);
    }

    [Fact]
    public async Task CancelledJobsStop()
    {
        var started = new TaskCompletionSource();
        _jobs.Changed += () =>
        {
            if (_jobs.Jobs.FirstOrDefault()?.Losses.Count > 0)
                started.TrySetResult();
        };
        var job = _jobs.Enqueue("x", "long", Tiny, Short with { Steps = 10_000 });
        await started.Task.WaitAsync(TimeSpan.FromMinutes(1)); // its first step is recorded
        job.Cancel();
        await Ended(job);
        Assert.Equal(JobState.Cancelled, job.State);
        Assert.True(job.Losses.Count < 10_000);
    }

    [Fact]
    public void BadSettingsAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            _jobs.Enqueue("x", "bad", Tiny with { AttentionHeads = 5 }, Short with { Steps = 0 })
        );
        Assert.Contains("steps 0", e.Message);
        Assert.Contains("num_attention_heads", e.Message);
        Assert.Empty(_jobs.Jobs);
    }
}
