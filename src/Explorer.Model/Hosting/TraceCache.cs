namespace Explorer.Model.Hosting;

/// <summary>
/// Traced forwards kept for reuse, most recent first, within a byte budget: the least recently used go first (the
/// newest always stays); an evicted trace is freed once no view holds a lease on it.
/// </summary>
internal sealed class TraceCache(long budgetBytes)
{
    private readonly LinkedList<CachedTrace> _entries = new();
    private readonly object _gate = new();
    private long _bytes;

    public long Bytes
    {
        get
        {
            lock (_gate)
                return _bytes;
        }
    }

    /// <summary>
    /// A lease on the trace for <paramref name="key"/>, which moves to the front, or null. Taken under the cache's
    /// lock, so that no other thread's <see cref="Add"/> can evict (and free) the trace between finding it and leasing
    /// it.
    /// </summary>
    public TraceLease? Lease(string key)
    {
        lock (_gate)
        {
            var hit = _entries.FirstOrDefault(e => e.Key == key);
            if (hit is null)
                return null;
            _entries.Remove(hit);
            _entries.AddFirst(hit);
            return new TraceLease(hit, hit.TakeTimings());
        }
    }

    public bool Contains(string key)
    {
        lock (_gate)
            return _entries.Any(e => e.Key == key);
    }

    public void Add(CachedTrace entry)
    {
        lock (_gate)
        {
            _entries.AddFirst(entry);
            _bytes += entry.Bytes;
            while (_bytes > budgetBytes && _entries.Count > 1)
                Remove(_entries.Last!.Value);
        }
    }

    /// <summary>Evicts every trace of a model (it is being unloaded).</summary>
    public void RemoveModel(string model)
    {
        lock (_gate)
            foreach (
                var entry in _entries
                    .Where(e => string.Equals(e.Model, model, StringComparison.OrdinalIgnoreCase))
                    .ToArray()
            )
                Remove(entry);
    }

    public void Clear()
    {
        lock (_gate)
            foreach (var entry in _entries.ToArray())
                Remove(entry);
    }

    private void Remove(CachedTrace entry)
    {
        if (_entries.Remove(entry))
        {
            _bytes -= entry.Bytes;
            entry.Evict();
        }
    }
}
