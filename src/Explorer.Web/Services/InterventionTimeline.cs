namespace Explorer.Web.Services;

/// <summary>One step of an interventions run on the model worker: what it did, on which model, how long it waited
/// behind other work and how long it ran.</summary>
public sealed record InterventionStep(string What, string Model, TimeSpan Waited, TimeSpan Ran, DateTimeOffset Done);

/// <summary>
/// An interventions run step by step: when it was asked for, each step's wait and compute, when its first result (the
/// first sweep) and its last were ready. What the page's timing line says, and what the browser benchmark lines up
/// with its own clock.
/// </summary>
public sealed class InterventionTimeline(DateTimeOffset requested)
{
    private readonly List<InterventionStep> _steps = [];

    public DateTimeOffset Requested { get; } = requested;
    public IReadOnlyList<InterventionStep> Steps => _steps;

    /// <summary>When the first sweep's result was ready (after the prompts were read); null before.</summary>
    public DateTimeOffset? FirstResult => _steps.Count > 1 ? _steps[1].Done : null;

    /// <summary>When the run ended with every step done; null while it runs or when it stopped early.</summary>
    public DateTimeOffset? Done { get; internal set; }

    public TimeSpan Compute => _steps.Aggregate(TimeSpan.Zero, (total, s) => total + s.Ran);
    public TimeSpan Waited => _steps.Aggregate(TimeSpan.Zero, (total, s) => total + s.Waited);

    internal void Add(InterventionStep step) => _steps.Add(step);

    /// <summary>The timing line: each step's compute, then the total and any wait behind other work.</summary>
    public string Describe()
    {
        var text =
            string.Join(", ", _steps.Select(s => $"{s.What} ({s.Model}) {RunTimeline.Time(s.Ran)}"))
            + $"; compute {RunTimeline.Time(Compute)}";
        return Waited >= TimeSpan.FromMilliseconds(1)
            ? text + $", {RunTimeline.Time(Waited)} waiting behind other work"
            : text;
    }
}
