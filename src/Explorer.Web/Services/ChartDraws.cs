namespace Explorer.Web.Services;

/// <summary>
/// The charts of one tab that the browser is still to draw: a chart counts itself from the moment its figure
/// changes until the browser has drawn it. Work that would take the cores from the browser while it draws (the
/// logit lens after a run, on a machine with few cores) waits for the charts first, for at most a bound.
/// </summary>
public sealed class ChartDraws
{
    private readonly object _gate = new();
    private int _pending;
    private TaskCompletionSource? _drawn;

    /// <summary>Charts whose figure changed and that the browser has not drawn yet.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
                return _pending;
        }
    }

    public void Begin()
    {
        lock (_gate)
            _pending++;
    }

    public void End()
    {
        TaskCompletionSource? drawn = null;
        lock (_gate)
        {
            if (_pending > 0)
                _pending--;
            if (_pending == 0)
                (drawn, _drawn) = (_drawn, null);
        }
        drawn?.TrySetResult();
    }

    /// <summary>Completes when no chart is waiting to be drawn, or after <paramref name="most"/>, whichever is
    /// first (a browser that never answers does not hold the work back for longer).</summary>
    public Task DrawnAsync(TimeSpan most)
    {
        Task drawn;
        lock (_gate)
        {
            if (_pending == 0)
                return Task.CompletedTask;
            _drawn ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            drawn = _drawn.Task;
        }
        return Task.WhenAny(drawn, Task.Delay(most));
    }
}
