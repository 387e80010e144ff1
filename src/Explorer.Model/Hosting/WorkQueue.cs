using System.Threading.Channels;

namespace Explorer.Model.Hosting;

/// <summary>
/// One worker that runs queued work in order, one item at a time: what the models need (a model and its traces are
/// touched by one thread), and what training runs need (one run at a time on a small machine). Work whose caller has
/// gone away by its turn is skipped; a bounded queue refuses work past its capacity rather than letting it pile up.
/// The worker is one dedicated thread, the same for every item: libtorch's intra-op parallelism (OpenMP) keeps a team
/// of threads per calling thread, and work hopping between thread-pool threads would start or wake another team for
/// each item, whose threads then compete for the cores with the team doing the work.
/// </summary>
public sealed class WorkQueue : IAsyncDisposable
{
    private readonly Channel<Action> _queue;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly int? _capacity;
    private long _cancelled;
    private int _waiting;
    private int _peakWaiting;

    /// <param name="capacity">Most items waiting at once (null: no limit).</param>
    /// <param name="name">The worker thread's name (what a profiler or a thread dump shows).</param>
    public WorkQueue(int? capacity = null, string name = "work queue")
    {
        if (capacity < 1)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "A work queue holds at least 1 item.");
        _capacity = capacity;
        _queue = capacity is { } bound
            ? Channel.CreateBounded<Action>(
                new BoundedChannelOptions(bound) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait }
            )
            : Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
        new Thread(Work) { IsBackground = true, Name = name }.Start();
    }

    /// <summary>Items skipped or stopped because their caller cancelled.</summary>
    public long Cancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Items queued or running now, and the most there have been at once.</summary>
    public int Waiting => Volatile.Read(ref _waiting);
    public int PeakWaiting => Volatile.Read(ref _peakWaiting);

    /// <summary>Cancelled as the queue is disposed: for work that should stop when the process does.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>
    /// Runs <paramref name="work"/> on the worker after what is queued before it; refused when the queue is full. A
    /// caller that cancels stops waiting at once; work that was already running then finishes with no one to take its
    /// result, which goes to <paramref name="orphaned"/> (to free what it holds).
    /// </summary>
    public async Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellation, Action<T>? orphaned = null)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Action item = () =>
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
                        var result = work();
                        if (!done.TrySetResult(result))
                            orphaned?.Invoke(result);
                    }
                    catch (OperationCanceledException e)
                    {
                        Interlocked.Increment(ref _cancelled); // stopped part way (between layers, between steps)
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
        };
        var waiting = Interlocked.Increment(ref _waiting);
        if (!_queue.Writer.TryWrite(item))
        {
            Interlocked.Decrement(ref _waiting);
            throw new InvalidOperationException(
                $"The model is busy: {_capacity} requests are already waiting. Try again shortly."
            );
        }
        for (var peak = Volatile.Read(ref _peakWaiting); waiting > peak; peak = Volatile.Read(ref _peakWaiting))
            Interlocked.CompareExchange(ref _peakWaiting, waiting, peak);
        using var registration = cancellation.Register(() => done.TrySetCanceled(cancellation));
        return await done.Task;
    }

    private void Work()
    {
        try
        {
            var reader = _queue.Reader;
            while (reader.WaitToReadAsync(_stopping.Token).AsTask().GetAwaiter().GetResult())
            while (reader.TryRead(out var item))
                item();
        }
        catch (OperationCanceledException) { }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>Stops taking work, cancels <see cref="Stopping"/> and waits for the item running now.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _stopped.Task;
        _stopping.Dispose();
    }
}
