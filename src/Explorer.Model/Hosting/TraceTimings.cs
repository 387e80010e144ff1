namespace Explorer.Model.Hosting;

/// <summary>
/// When a piece of work on the model worker (a traced forward, a lens completion) was handed to it, taken up and
/// done. Wall-clock marks, so that a browser on the same machine can line them up with its own. Work that was not
/// needed (a trace reused from the cache, a lens already complete) has its three marks at the moment that was found.
/// </summary>
public sealed record TraceTimings(DateTimeOffset Queued, DateTimeOffset Started, DateTimeOffset Done, bool Reused)
{
    /// <summary>Time spent behind other work on the worker (a warm-up, another tab's run).</summary>
    public TimeSpan Waited => Started - Queued;

    /// <summary>Time the work itself took.</summary>
    public TimeSpan Ran => Done - Started;

    public static TraceTimings NotNeeded()
    {
        var now = DateTimeOffset.UtcNow;
        return new TraceTimings(now, now, now, Reused: true);
    }
}
