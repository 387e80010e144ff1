using Explorer.Model.Hosting;

namespace Explorer.Web.Services;

/// <summary>One model's part of a run: its tokens, when they were tokenised, its forward and its lens.</summary>
public sealed class ModelRun(string model, int tokens, TimeSpan tokenize, TraceTimings forward)
{
    public string Model { get; } = model;
    public int Tokens { get; } = tokens;
    public TimeSpan Tokenize { get; } = tokenize;
    public TraceTimings Forward { get; } = forward;

    /// <summary>The logit lens at the last position, read after the forward (null before).</summary>
    public TraceTimings? LastLens { get; internal set; }

    /// <summary>The logit lens at every position, once it has been completed (null before).</summary>
    public TraceTimings? Lens { get; internal set; }

    /// <summary>The lens's estimated time when it waits to be asked for (too long to run unasked); null
    /// otherwise.</summary>
    public TimeSpan? LensOnRequest { get; internal set; }
}

/// <summary>
/// A run of the prompt stage by stage: when it was asked for, each model's tokenising, wait on the worker, forward
/// and lens. What the prompt bar's timing line says, and what the browser benchmark lines up with its own clock to
/// tell compute from everything around it.
/// </summary>
public sealed class RunTimeline(DateTimeOffset requested)
{
    private readonly List<ModelRun> _models = [];

    public DateTimeOffset Requested { get; } = requested;
    public IReadOnlyList<ModelRun> Models => _models;

    /// <summary>When every model's forward was done (null while the run goes on, or when it did not finish).</summary>
    public DateTimeOffset? Traced { get; internal set; }

    /// <summary>When the lens at every position was done for every model (null until then).</summary>
    public DateTimeOffset? LensDone =>
        Traced is not null && _models.All(m => m.Lens is not null) ? _models.Max(m => m.Lens!.Done) : null;

    /// <summary>When the first forward was handed to the worker: before <see cref="Requested"/> when the page's
    /// prerender started it (the run then joined it).</summary>
    public DateTimeOffset? ForwardQueued => _models.Count == 0 ? null : _models.Min(m => m.Forward.Queued);

    /// <summary>Whether some model's lens at every position waits to be asked for (every other chart is
    /// drawn).</summary>
    public bool LensOnRequest => Traced is not null && _models.Any(m => m.Lens is null && m.LensOnRequest is not null);

    internal void Add(ModelRun run) => _models.Add(run);

    public TimeSpan Tokenize => Sum(m => m.Tokenize);
    public TimeSpan Waited => Sum(m => m.Forward.Waited + LensWaited(m));
    public TimeSpan Forward => Sum(m => m.Forward.Ran);

    /// <summary>The lens's time on the worker: at the last position, and at every other once completed.</summary>
    public TimeSpan Lens => Sum(m => (m.LastLens?.Ran ?? TimeSpan.Zero) + (m.Lens?.Ran ?? TimeSpan.Zero));

    private static TimeSpan LensWaited(ModelRun m) =>
        (m.LastLens?.Waited ?? TimeSpan.Zero) + (m.Lens?.Waited ?? TimeSpan.Zero);

    private TimeSpan Sum(Func<ModelRun, TimeSpan> part) =>
        _models.Aggregate(TimeSpan.Zero, (total, m) => total + part(m));

    /// <summary>The timing line: per model, its tokens and forward (or that it came from the cache), any wait
    /// behind other work, and the lens at the last position and at every position once each is done.</summary>
    public string Describe()
    {
        var parts = _models.Select(m =>
        {
            var text = m.Forward.Reused
                ? $"{m.Model}, {m.Tokens} tokens: from the cache"
                : $"{m.Model}, {m.Tokens} tokens: forward {Time(m.Forward.Ran)}"
                    + (m.Forward.Queued < Requested ? " (started while the page loaded)" : "");
            var waited = m.Forward.Waited + LensWaited(m);
            if (waited >= TimeSpan.FromMilliseconds(1))
                text += $", {Time(waited)} waiting behind other work";
            if (m.LastLens is { Reused: false } last)
                text += $"; lens at the last position {Time(last.Ran)}";
            if (m.Lens is { Reused: false } lens)
                text += $"; lens at every position {Time(lens.Ran)} after";
            else if (m.Lens is null && m.LensOnRequest is { } estimate)
                text += $"; lens at every position on request (about {Time(estimate)})";
            return text;
        });
        return string.Join(" · ", parts);
    }

    /// <summary>A duration as a person reads it: milliseconds under a second, seconds to two decimals
    /// above.</summary>
    public static string Time(TimeSpan t) =>
        t < TimeSpan.FromSeconds(1) ? $"{t.TotalMilliseconds:0} ms" : $"{t.TotalSeconds:0.00} s";

    /// <summary>A mark as milliseconds since the Unix epoch (what a browser's Date.now() gives).</summary>
    public static long UnixMs(DateTimeOffset at) => at.ToUnixTimeMilliseconds();
}
