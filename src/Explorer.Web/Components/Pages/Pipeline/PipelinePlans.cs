using Explorer.Core.Formatting;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Model.Pipeline;
using Explorer.Web.Views;

namespace Explorer.Web.Components.Pages.Pipeline;

/// <summary>
/// What the Pipeline page shows for its settings: plan A and plan B (or what is wrong with the settings), the
/// divisibility chart's rows, plan A's communication under a chosen configuration, and a measured run in the
/// simulator's shape. Each figure is rebuilt only when what it is made from changes, so re-rendering resends nothing.
/// </summary>
public sealed class PipelinePlans
{
    private CostSettings? _divisibilityCosts;
    private (PlanReport?, ParallelChoice?) _communicationOf;
    private GanttCommunication? _communication;
    private PipelineRunResult? _measuredOf;
    private SimulationResult? _measured;

    public PlanOutcome? A { get; private set; }
    public PlanOutcome? B { get; private set; }
    public string? Problem { get; set; }
    public IReadOnlyList<(string, IReadOnlyList<DivisibilityRow>)> Divisibility { get; private set; } = [];

    public void Recompute(PipelineSettings s)
    {
        var (units, problem) = s.Units();
        Problem = problem;
        if (units is null)
        {
            A = B = null;
            return;
        }
        A = Plan(s.Request(units, s.Method, s.Schedule));
        B = Plan(s.Request(units, s.CompareMethod, s.CompareSchedule));
        if (_divisibilityCosts != s.Costs)
        {
            _divisibilityCosts = s.Costs;
            IReadOnlyList<DivisibilityRow> Rows(ModelSpec spec) =>
                DivisibilityAnalysis.Compute(
                    spec,
                    s.Costs with
                    {
                        SequenceLength = Math.Min(s.SequenceLength, spec.ContextLength),
                    }
                );
            Divisibility = [("7B", Rows(ModelPresets.DeepSeekLlm7B)), ("67B", Rows(ModelPresets.DeepSeekLlm67B))];
        }
    }

    /// <summary>A plan, or the planner's refusal as the outcome: bad settings are said, never thrown.</summary>
    public static PlanOutcome Plan(PlanRequest request)
    {
        try
        {
            return PipelinePlanner.Plan(request);
        }
        catch (Exception e) when (e is PlanException or ArgumentException)
        {
            return new PlanOutcome(null, ProblemText.Readable(e));
        }
    }

    /// <summary>A chosen configuration's tensor- and data-parallel communication over plan A's Gantt chart; none
    /// without one.</summary>
    public GanttCommunication? Communication(PipelineSettings s, PlanReport report)
    {
        if (_communicationOf != (report, s.Parallel))
        {
            _communicationOf = (report, s.Parallel);
            _communication = s.Parallel is { } choice
                ? GanttCommunication.For(s.Spec, s.SequenceLength, choice, report.Plan)
                : null;
        }
        return _communication;
    }

    /// <summary>A measured split run's timeline in the simulator's shape, to draw beside the prediction.</summary>
    public SimulationResult Measured(PipelineRunResult run, ScheduleKind schedule)
    {
        if (!ReferenceEquals(_measuredOf, run))
        {
            _measured = SimulationResult.Measured(schedule, run.Timeline, run.MakespanMs);
            _measuredOf = run;
        }
        return _measured!;
    }
}
