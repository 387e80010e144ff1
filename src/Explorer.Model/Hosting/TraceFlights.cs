namespace Explorer.Model.Hosting;

/// <summary>
/// Traced forwards under way, by cache key, so that a second request for a trace already running waits for that run
/// instead of starting another (a shared link's prerender and its live page, two tabs on one link, a model selection
/// and a Run). A flight has its own cancellation: it stops when the last request waiting on it has gone. A
/// speculative request (a page still being prerendered, whose live circuit asks for the same trace a moment later)
/// holds a flight up only until a real request joins it, and at most <see cref="MaxSpeculative"/> speculative flights
/// are in the air at a time, so plain page loads cannot queue up forwards.
/// </summary>
internal sealed class TraceFlights
{
    /// <summary>Speculative flights at most at a time: the two models of a compare link.</summary>
    public const int MaxSpeculative = 2;

    private readonly Dictionary<string, Flight> _flights = new();
    private readonly object _gate = new();
    private int _speculative;

    /// <summary>Flights in the air.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
                return _flights.Count;
        }
    }

    /// <summary>One run of a trace and the requests waiting on it.</summary>
    public sealed class Flight
    {
        internal readonly CancellationTokenSource Stop = new();
        internal readonly List<IProgress<int>> Watchers = [];
        internal int Waiters = 1;
        internal bool Speculative;
        internal bool Landed;
        internal bool Stopping; // its last request left: a new request starts a new flight

        /// <summary>The trace, added to the cache, once the run is done.</summary>
        public Task<CachedTrace> Done { get; internal set; } = null!;

        /// <summary>The run's cancellation: every request waiting on it has gone.</summary>
        public CancellationToken Cancellation => Stop.Token;
    }

    /// <summary>Tells every request waiting on <paramref name="flight"/> the layers done.</summary>
    public void Report(Flight flight, int layers)
    {
        IProgress<int>[] watchers;
        lock (_gate)
            watchers = flight.Watchers.ToArray();
        foreach (var watcher in watchers)
            watcher.Report(layers);
    }

    /// <summary>
    /// Stops <paramref name="flight"/> if only its speculative request has asked for it so far (before its forward
    /// starts, or between layers); true when it did. A flight a real request joined, or one that landed, goes on.
    /// </summary>
    public bool StopIfUnjoined(Flight flight)
    {
        lock (_gate)
        {
            if (!flight.Speculative || flight.Landed || flight.Stopping)
                return false;
            flight.Stopping = true;
        }
        try
        {
            flight.Stop.Cancel();
        }
        catch (ObjectDisposedException) { } // it landed meanwhile
        return true;
    }

    /// <summary>Whether only a speculative request has asked for the flight so far.</summary>
    public bool Unjoined(Flight flight)
    {
        lock (_gate)
            return flight.Speculative;
    }

    /// <summary>
    /// Joins the flight for <paramref name="key"/>, or starts one with <paramref name="run"/> (given the flight, for
    /// its <see cref="Flight.Cancellation"/> and to <see cref="Report"/> to). A speculative request gets null when
    /// the trace is already flying or too many speculative flights are; a real one waits with
    /// <see cref="WaitAsync"/>.
    /// </summary>
    public Flight? Join(string key, Func<Flight, Task<CachedTrace>> run, IProgress<int>? watcher, bool speculative)
    {
        lock (_gate)
        {
            if (_flights.TryGetValue(key, out var flight) && !flight.Stopping)
            {
                if (speculative)
                    return null;
                if (flight.Speculative)
                    Settle(flight); // the real request takes the speculative one's place
                else
                    flight.Waiters++;
                if (watcher is not null)
                    flight.Watchers.Add(watcher);
                return flight;
            }
            if (speculative && _speculative >= MaxSpeculative)
                return null;
            flight = new Flight { Speculative = speculative };
            if (speculative)
                _speculative++;
            if (watcher is not null)
                flight.Watchers.Add(watcher);
            _flights[key] = flight;
            flight.Done = FlyAsync(key, flight, run);
            return flight;
        }
    }

    /// <summary>
    /// Waits for a flight joined with <see cref="Join"/> and leaves it, as <paramref name="cancellation"/> fires
    /// (at once, so the forward stops before it starts when this was its last request) or when it lands.
    /// </summary>
    public async Task<CachedTrace> WaitAsync(Flight flight, CancellationToken cancellation)
    {
        var left = 0;
        void LeaveOnce()
        {
            if (Interlocked.Exchange(ref left, 1) == 0)
                Leave(flight);
        }
        using var leaving = cancellation.Register(LeaveOnce);
        try
        {
            return await flight.Done.WaitAsync(cancellation);
        }
        finally
        {
            LeaveOnce();
        }
    }

    /// <summary>A request stops waiting; the flight is cancelled when it was the last.</summary>
    private void Leave(Flight flight)
    {
        bool stop;
        lock (_gate)
        {
            flight.Waiters--;
            stop = flight.Waiters == 0 && !flight.Landed;
            flight.Stopping |= stop;
        }
        if (!stop)
            return;
        try
        {
            flight.Stop.Cancel();
        }
        catch (ObjectDisposedException) { } // it landed meanwhile
    }

    private async Task<CachedTrace> FlyAsync(string key, Flight flight, Func<Flight, Task<CachedTrace>> run)
    {
        await Task.Yield(); // registered before it runs, whatever the run does synchronously
        try
        {
            return await run(flight);
        }
        finally
        {
            lock (_gate)
            {
                if (_flights.TryGetValue(key, out var current) && ReferenceEquals(current, flight))
                    _flights.Remove(key);
                if (flight.Speculative)
                    Settle(flight);
                flight.Landed = true;
                flight.Stop.Dispose();
            }
        }
    }

    private void Settle(Flight flight)
    {
        flight.Speculative = false;
        _speculative--;
    }
}
