using Explorer.Model.Hosting;

namespace Explorer.Model.Tests.Hosting;

public sealed class WorkQueueTests : IAsyncLifetime
{
    private readonly WorkQueue _queue = new(capacity: 2);
    private readonly List<TaskCompletionSource> _holds = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var hold in _holds)
            hold.TrySetResult(); // a failed test must not leave the worker held
        await _queue.DisposeAsync();
    }

    /// <summary>Queues an item that holds the worker until <paramref name="release"/> is set, and waits until it
    /// runs.</summary>
    private async Task<Task<bool>> HoldTheWorker(TaskCompletionSource release)
    {
        _holds.Add(release);
        var running = new TaskCompletionSource();
        var held = _queue.RunAsync(
            () =>
            {
                running.SetResult();
                release.Task.Wait();
                return true;
            },
            CancellationToken.None
        );
        await running.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return held;
    }

    [Fact]
    public async Task ItemsRunOneAtATimeInOrder()
    {
        var release = new TaskCompletionSource();
        var held = await HoldTheWorker(release);
        var order = new List<int>();
        var running = 0;
        var overlapped = false;
        int Work(int id)
        {
            overlapped |= Interlocked.Increment(ref running) > 1;
            lock (order)
                order.Add(id);
            Interlocked.Decrement(ref running);
            return id;
        }
        var first = _queue.RunAsync(() => Work(1), CancellationToken.None);
        var second = _queue.RunAsync(() => Work(2), CancellationToken.None);
        Assert.Equal(3, _queue.Waiting); // the held item, the first and the second
        Assert.Empty(order);
        release.SetResult();
        var results = await Task.WhenAll(first, second);
        Assert.Equal(new[] { 1, 2 }, results);
        Assert.True(await held);
        Assert.Equal(new[] { 1, 2 }, order);
        Assert.False(overlapped);
        Assert.Equal(3, _queue.PeakWaiting);
    }

    [Fact]
    public async Task AFullQueueRefusesAndSaysWhy()
    {
        var release = new TaskCompletionSource();
        var held = await HoldTheWorker(release);
        // One running, two waiting (the capacity): the next is refused.
        var waiting = new[]
        {
            _queue.RunAsync(() => 1, CancellationToken.None),
            _queue.RunAsync(() => 2, CancellationToken.None),
        };
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            _queue.RunAsync(() => 3, CancellationToken.None)
        );
        Assert.Contains("2 requests are already waiting", refused.Message);
        release.SetResult();
        Assert.Equal(new[] { 1, 2 }, await Task.WhenAll(waiting));
        Assert.True(await held);
    }

    [Fact]
    public async Task WorkWhoseCallerLeftIsSkipped()
    {
        var release = new TaskCompletionSource();
        var held = await HoldTheWorker(release);
        using var leave = new CancellationTokenSource();
        var ran = false;
        var abandoned = _queue.RunAsync(() => ran = true, leave.Token);
        leave.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        release.SetResult();
        await held;
        Assert.Equal(7, await _queue.RunAsync(() => 7, CancellationToken.None)); // after the skipped item's turn
        Assert.False(ran);
        Assert.Equal(1, _queue.Cancelled);
    }

    [Fact]
    public async Task AResultNoOneWaitsForAnyMoreGoesToOrphaned()
    {
        // The caller cancels while its item runs: it stops waiting at once, and the result the item still produces is
        // handed to the orphan callback (the host frees a trace there) instead of being dropped.
        using var caller = new CancellationTokenSource();
        var running = new TaskCompletionSource();
        var finish = new TaskCompletionSource();
        _holds.Add(finish);
        var orphans = new List<string>();
        var orphaned = new TaskCompletionSource();
        var call = _queue.RunAsync(
            () =>
            {
                running.SetResult();
                finish.Task.Wait();
                return "trace";
            },
            caller.Token,
            result =>
            {
                lock (orphans)
                    orphans.Add(result);
                orphaned.SetResult();
            }
        );
        await running.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await caller.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Empty(orphans); // still running
        finish.SetResult();
        await orphaned.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(["trace"], orphans);

        // A result its caller takes is never orphaned.
        var taken = await _queue.RunAsync(
            () => "kept",
            CancellationToken.None,
            result =>
            {
                lock (orphans)
                    orphans.Add(result);
            }
        );
        Assert.Equal("kept", taken);
        Assert.Equal(["trace"], orphans);
    }
}
