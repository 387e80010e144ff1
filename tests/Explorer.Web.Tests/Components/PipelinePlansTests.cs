using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Web.Components.Pages.Pipeline;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class PipelinePlansTests
{
    [Fact]
    public void BadSettingsAreSaidAndPlanNothing()
    {
        var plans = new PipelinePlans();
        var settings = new PipelineSettings
        {
            Spec = MiniPresets.DeepSeek7BMini,
            SequenceLength = 5000,
            Stages = 4,
        };
        plans.Recompute(settings);
        Assert.Contains("sequence length 5000: deepseek-7b-mini has a context of 1024", plans.Problem);
        Assert.Null(plans.A);
        settings.SequenceLength = 512;
        settings.Stages = 40; // more stages than the 33 units: a refusal in the outcome, not an exception
        plans.Recompute(settings);
        Assert.Null(plans.Problem);
        Assert.Contains("40 stages is more than the 33 units", plans.A!.Refusal);
    }

    [Fact]
    public void PlanAIsThePlannersAndItsCommunicationIsBuiltOncePerPlan()
    {
        var plans = new PipelinePlans();
        var settings = new PipelineSettings { Spec = ModelPresets.DeepSeekLlm67B, SequenceLength = 4096 };
        var cluster = Cluster.Node8(Gpu.H200);
        var config = new ParallelConfig
        {
            Tensor = 2,
            Pipeline = 4,
            Data = 8,
            GlobalBatch = 256,
            SequenceParallel = true,
            Recompute = Recomputation.Selective,
        };
        settings.Apply(new ParallelChoice(cluster, ParallelEstimator.Estimate(settings.Spec, 4096, cluster, config)));
        plans.Recompute(settings);
        var report = plans.A!.Report!;
        var direct = PipelinePlanner
            .Plan(
                settings.Request(
                    ParallelEstimator.Units(settings.Spec, 4096, cluster, config),
                    settings.Method,
                    settings.Schedule
                )
            )
            .Report!;
        Assert.Equal(direct.Plan.Boundaries, report.Plan.Boundaries);
        Assert.Equal(direct.Simulation.Makespan, report.Simulation.Makespan);
        var communication = plans.Communication(settings, report);
        Assert.NotNull(communication);
        Assert.Same(communication, plans.Communication(settings, report));
        settings.Parallel = null;
        Assert.Null(plans.Communication(settings, report));
    }
}
