using Explorer.Model.Decoder;

namespace Explorer.Model.Hosting;

/// <summary>
/// A trace on loan from the host's cache, with the tokens it ran and their display pieces. Dispose when the view
/// is done; the trace itself is freed once it has left the cache and no lease holds it.
/// </summary>
public sealed class TraceLease : IDisposable
{
    private readonly CachedTrace _entry;
    private int _released;

    internal TraceLease(CachedTrace entry, TraceTimings timings)
    {
        _entry = entry;
        entry.Acquire();
        Timings = timings;
    }

    /// <summary>A lease on a trace just run, with its forward's timings; null when it was evicted and freed before
    /// it could be taken.</summary>
    internal static TraceLease? TryTake(CachedTrace entry)
    {
        try
        {
            return new TraceLease(entry, entry.Timings);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
    }

    public string Model => _entry.Model;
    public DecoderTrace Trace => _entry.Trace;
    public IReadOnlyList<int> Tokens => _entry.Tokens;
    public IReadOnlyList<string> Pieces => _entry.Pieces;
    public bool FromCache => Timings.Reused;

    /// <summary>When this lease's forward was queued, started and done (a cache hit: when it was found).</summary>
    public TraceTimings Timings { get; }

    /// <summary>What the trace counts against the host's cache budget.</summary>
    public long Bytes => _entry.Bytes;

    /// <summary>Another lease on the same trace, for work that must outlive the caller's (the lens
    /// completion).</summary>
    internal TraceLease Share() => new(_entry, Timings);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
            _entry.Release();
    }
}

/// <summary>A cache entry: counts its leases and frees the trace when evicted and unleased.</summary>
internal sealed class CachedTrace(
    string key,
    string model,
    int[] tokens,
    IReadOnlyList<string> pieces,
    DecoderTrace trace,
    TraceTimings timings
)
{
    private int _leases;
    private bool _evicted;
    private bool _disposed;
    private readonly object _gate = new();

    public string Key { get; } = key;
    public string Model { get; } = model;
    public int[] Tokens { get; } = tokens;
    public IReadOnlyList<string> Pieces { get; } = pieces;
    public DecoderTrace Trace { get; } = trace;

    /// <summary>When the forward that made the trace was queued, started and done.</summary>
    public TraceTimings Timings { get; } = timings;

    /// <summary>Run for a page still being prerendered, before any request asked for it; its first lease from the
    /// cache is that request's, and reports the forward (<see cref="TakeTimings"/>).</summary>
    public bool Prefetched { get; set; }

    private int _timingsTaken;

    /// <summary>The forward's marks for the first lease of a prefetched trace (the forward its page load started
    /// for it); for any other, the marks of a trace that was not needed.</summary>
    public TraceTimings TakeTimings() =>
        Prefetched && Interlocked.Exchange(ref _timingsTaken, 1) == 0 ? Timings : TraceTimings.NotNeeded();

    public long Bytes { get; } =
        trace.AttentionBytes
        + trace.DeferredLensBytes
        + (long)trace.Length * (trace.Layers * 6 + trace.Spec.VocabularySize) * sizeof(float);

    public void Acquire()
    {
        lock (_gate)
        {
            if (_disposed)
                throw new ObjectDisposedException(nameof(CachedTrace), "This trace was evicted from the cache.");
            _leases++;
        }
    }

    public void Release()
    {
        lock (_gate)
        {
            _leases--;
            FreeIfUnused();
        }
    }

    public void Evict()
    {
        lock (_gate)
        {
            _evicted = true;
            FreeIfUnused();
        }
    }

    public bool IsDisposed
    {
        get
        {
            lock (_gate)
                return _disposed;
        }
    }

    private void FreeIfUnused()
    {
        if (_evicted && _leases == 0 && !_disposed)
        {
            _disposed = true;
            Trace.Dispose();
        }
    }
}
