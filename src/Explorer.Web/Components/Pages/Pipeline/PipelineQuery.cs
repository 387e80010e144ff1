using System.Globalization;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Web.Views;

namespace Explorer.Web.Components.Pages.Pipeline;

/// <summary>
/// The Pipeline page's plan in its URL: <c>model, stages, schedule, microbatches, virtual, seq, mbs, method,
/// boundaries</c> (the first unit of stages 2…p, as the planner counts units: 0 the embedding, 1…L the layers, L + 1
/// the head, L + 2 the loss). Read leniently: a value that cannot be used is left out, with a note naming it and what
/// is allowed; the planner then says what is wrong with the rest, as it does for values typed on the page.
/// </summary>
public static class PipelineQuery
{
    public static readonly IReadOnlyList<string> Keys =
    [
        "model",
        "stages",
        "schedule",
        "microbatches",
        "virtual",
        "seq",
        "mbs",
        "method",
        "boundaries",
    ];

    /// <summary>Most boundaries read from a link (far more than any model has units).</summary>
    public const int MaxBoundaries = 1024;

    private static readonly IReadOnlyDictionary<string, PartitionMethod> Methods = new Dictionary<
        string,
        PartitionMethod
    >(StringComparer.OrdinalIgnoreCase)
    {
        ["optimal"] = PartitionMethod.Optimal,
        ["uniform"] = PartitionMethod.Uniform,
        ["parameters"] = PartitionMethod.Parameters,
        ["manual"] = PartitionMethod.Manual,
    };

    public static string MethodName(PartitionMethod method) => method.ToString().ToLowerInvariant();

    /// <summary>The URL parameters for the plan as it stands.</summary>
    public static IReadOnlyDictionary<string, object?> Write(PipelineSettings s) =>
        new Dictionary<string, object?>
        {
            ["model"] = s.Spec.Name,
            ["stages"] = s.Stages,
            ["schedule"] = ScheduleNames.Name(s.Schedule),
            ["microbatches"] = s.MicroBatches,
            ["virtual"] = SchedulePlacement.UsesVirtualStages(s.Schedule) ? s.VirtualStages : null,
            ["seq"] = s.SequenceLength,
            ["mbs"] = s.MicroBatchSize,
            ["method"] = MethodName(s.Method),
            ["boundaries"] =
                s.Method == PartitionMethod.Manual && s.ManualBoundaries is { } b ? string.Join(",", b) : null,
        };

    /// <summary>
    /// Applies what <paramref name="query"/> holds to <paramref name="s"/>; returns whether it held a plan (any key but
    /// the model) and the notes on the values left out.
    /// </summary>
    public static (bool HasPlan, IReadOnlyList<string> Notes) Read(PipelineSettings s, Func<string, string?> query)
    {
        var notes = new QueryNotes();
        string? Value(string key) => query(key) is { Length: > 0 } v ? v.Trim() : null;

        if (Value("model") is { } model)
        {
            if (KnownModels.TryGet(model, out var spec))
            {
                s.Spec = spec;
                s.SequenceLength = Math.Min(s.SequenceLength, spec.ContextLength);
            }
            else
                notes.Note("model", model, $"use one of {string.Join(", ", KnownModels.Names)}");
        }
        var units = UnitNumbering.Count(s.Spec.Layers);
        if (notes.Int("stages", Value("stages"), 1, units) is { } stages)
            s.Stages = stages;
        if (notes.Int("microbatches", Value("microbatches"), 1, PlanRequest.MaxMicroBatches) is { } m)
            s.MicroBatches = m;
        if (notes.Int("virtual", Value("virtual"), 1, units) is { } v)
            s.VirtualStages = v;
        if (notes.Int("seq", Value("seq"), 2, s.Spec.ContextLength) is { } seq)
            s.SequenceLength = seq;
        if (notes.Int("mbs", Value("mbs"), 1, 65_536) is { } mbs)
            s.MicroBatchSize = mbs;
        if (Value("schedule") is { } schedule)
        {
            try
            {
                s.Schedule = ScheduleNames.Parse(schedule);
            }
            catch (ArgumentException)
            {
                notes.Note(
                    "schedule",
                    schedule,
                    $"use {string.Join(", ", ScheduleNames.All.Select(ScheduleNames.Name))}"
                );
            }
        }
        if (Value("method") is { } method)
        {
            if (Methods.TryGetValue(method, out var kind))
                s.Method = kind;
            else
                notes.Note("method", method, "use optimal, uniform, parameters or manual");
        }
        if (Value("boundaries") is { } list)
        {
            var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var boundaries =
                parts.Length <= MaxBoundaries
                    ? parts
                        .Select(p =>
                            int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var u) ? u : -1
                        )
                        .ToArray()
                    : null;
            // p − 1 strictly increasing unit indices, each from 1 to the last unit.
            var expected =
                SchedulePlacement.Stages(
                    s.Schedule,
                    s.Stages,
                    SchedulePlacement.UsesVirtualStages(s.Schedule) ? s.VirtualStages : 1
                ) - 1;
            if (
                boundaries is not null
                && boundaries.Length == expected
                && boundaries.All(u => u >= 1 && u < units)
                && boundaries.Zip(boundaries.Skip(1)).All(pair => pair.First < pair.Second)
            )
            {
                s.ManualBoundaries = boundaries;
                s.Method = PartitionMethod.Manual;
            }
            else
                notes.Note(
                    "boundaries",
                    list,
                    $"{expected} increasing unit indices from 1 to {units - 1}, comma-separated (the "
                        + $"first unit of stages 2…{expected + 1})"
                );
        }
        if (s.Method == PartitionMethod.Manual && s.ManualBoundaries is null)
            s.Method = PartitionMethod.Optimal; // manual with no boundaries to keep: the planner's best instead
        var hasPlan = Keys.Skip(1).Any(k => Value(k) is not null);
        return (hasPlan, notes.Notes);
    }
}
