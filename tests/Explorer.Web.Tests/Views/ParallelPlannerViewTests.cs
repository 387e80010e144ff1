using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Web.Components.Pages.Pipeline;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class ParallelPlannerViewTests
{
    [Fact]
    public void APresetFillsEditableFiguresAndTheClusterUsesTheEdits()
    {
        var view = new ParallelPlannerView();
        view.SelectGpu("a100-80gb");
        Assert.Equal(312, view.PeakTflops, 9);
        Assert.Equal(80, view.MemoryGB, 9);
        Assert.Equal(300, view.IntraNodeGBps, 9);
        Assert.Equal(25, view.InterNodeGBps, 9);
        view.MemoryGB = 40;
        view.InterNodeGBps = 12.5;
        Assert.Equal(40_000_000_000, view.Cluster.Gpu.MemoryBytes);
        Assert.Equal(12.5e9, view.Cluster.InterNodeBytesPerSecond, 3);
    }

    [Fact]
    public void TheSearchChoosesTheFastestRunnableConfigurationAndRowsCanBeChosen()
    {
        var view = new ParallelPlannerView { Gpus = 64, GlobalBatch = 256 };
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        var all = ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, Cluster.Node8(Gpu.H200), 64, 256).Fitting;
        var runnable = all.Where(e => e.Config.Schedule != ScheduleKind.ZeroBubbleH1).ToArray();
        Assert.Equal(runnable.Take(ParallelPlannerView.Rows).Select(e => e.Config), view.Top.Select(e => e.Config));
        Assert.Equal(runnable[0].Config, view.Chosen!.Config);
        view.Choose(3);
        Assert.Equal(runnable[3].Config, view.Chosen!.Config);
        view.Choose(99); // off the table: the choice stays
        Assert.Equal(runnable[3].Config, view.Chosen!.Config);
        view.ExportableOnly = false;
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.Equal(all[0].Config, view.Chosen!.Config);
    }

    [Fact]
    public void AppliedToThePipelineItsStagesAreThePDimension()
    {
        var view = new ParallelPlannerView { Gpus = 64, GlobalBatch = 256 };
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        var settings = new PipelineSettings();
        settings.Apply(view.Chosen!);
        var c = view.Chosen!.Config;
        Assert.Equal(c.Pipeline, settings.Stages);
        Assert.Equal(c.MicroBatches, settings.MicroBatches);
        var (units, problem) = settings.Units();
        Assert.Null(problem);
        // One GPU of the t-way group holds 1/t of each layer's parameters.
        Assert.Equal(ParameterBreakdown.Of(ModelPresets.DeepSeekLlm67B).PerLayer.Total / c.Tensor, units!.First(u => u.Kind == UnitKind.Layer).Parameters);
        var request = settings.Request(units!, PartitionMethod.Optimal, settings.Schedule);
        Assert.Equal(ParallelEstimator.StateBytesPerParameter(c), request.StateBytesPerParameter, 12);
    }

    [Fact]
    public void NothingFittingSaysWhat()
    {
        var view = new ParallelPlannerView { Gpus = 2, GlobalBatch = 8 };
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.Null(view.Chosen);
        Assert.Contains("No configuration of deepseek-llm-67b fits 2 × 141 GB", view.Problem);
        view.Gpus = 0;
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.Contains("GPUs: 0", view.Problem);
    }
}
