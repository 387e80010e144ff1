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
        // By default the schedules Megatron-LM runs: 1F1B and interleaved 1F1B.
        var runnable = all.Where(e => e.Config.Schedule is ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B)
            .ToArray();
        Assert.Equal(runnable.Take(ParallelPlannerView.Rows).Select(e => e.Config), view.Top.Select(e => e.Config));
        Assert.Equal(runnable[0].Config, view.Chosen!.Config);
        view.Choose(3);
        Assert.Equal(runnable[3].Config, view.Chosen!.Config);
        view.Choose(99); // off the table: the choice stays
        Assert.Equal(runnable[3].Config, view.Chosen!.Config);
        view.Engine = null;
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.Equal(all[0].Config, view.Chosen!.Config);
        // torchtitan also runs the zero-bubble and V schedules, which the search then ranks with the rest.
        view.Engine = "torchtitan";
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.Equal(
            all.First(e => e.Config.Schedule is not (ScheduleKind.ZeroBubbleH1 or ScheduleKind.DualPipe)).Config,
            view.Chosen!.Config
        );
        Assert.Contains(view.Top, e =>
            e.Config.Schedule
                is ScheduleKind.ZeroBubbleV
                    or ScheduleKind.DualPipeV
                    or ScheduleKind.InterleavedZeroBubble
        );
    }

    [Fact]
    public void TiesAndTheParetoFrontAreReadOffTheSearch()
    {
        var view = new ParallelPlannerView { Gpus = 64, GlobalBatch = 256 };
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        var fitting = ParallelSearch
            .Search(ModelPresets.DeepSeekLlm67B, 4096, Cluster.Node8(Gpu.H200), 64, 256)
            .Fitting.Where(e => e.Config.Schedule is ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B)
            .ToArray();
        // Tied: every configuration no slower than the fastest plus the estimator's error, and only those.
        var limit = fitting[0].StepSeconds * (1 + Tradeoffs.EstimatorError);
        Assert.Equal(fitting.Count(e => e.StepSeconds <= limit), view.Tied);
        Assert.True(
            view.Tied > 1,
            "on 64 H200s many configurations of the 67B land within the estimator's error of the fastest"
        );
        Assert.Contains($"The {view.Tied:N0} fastest are within the estimator's error", view.TieSentence());
        // The front: no fitting configuration is both faster and smaller than one on it; its ends are the fastest and
        // the smallest.
        foreach (var f in view.Front)
            Assert.DoesNotContain(fitting, e =>
                e.StepSeconds <= f.StepSeconds
                && e.Memory!.Total <= f.Memory!.Total
                && (e.StepSeconds < f.StepSeconds || e.Memory.Total < f.Memory.Total)
            );
        Assert.Equal(fitting.Min(e => e.Memory!.Total), view.Front[0].Memory!.Total);
        Assert.Equal(fitting.Min(e => e.StepSeconds), view.Front[^1].StepSeconds);
        // The chart: the cloud of fitting points (up to the cap) and the front, in GB and seconds.
        Assert.Equal(Math.Min(fitting.Length, ParallelPlannerView.MaxPoints), view.TradeoffLines[0].X.Length);
        Assert.True(view.TradeoffLines[0].PointsOnly);
        // GiB, as the table
        Assert.Equal(view.Front.Select(e => e.Memory!.Total / (double)(1L << 30)), view.TradeoffLines[1].X);
        Assert.Equal($"fits ({fitting.Length:N0})", view.TradeoffLines[0].Name);
    }

    [Fact]
    public void TheOverlapSettingReachesEveryConfigurationThatAllowsIt()
    {
        var view = new ParallelPlannerView { Gpus = 64, GlobalBatch = 256 };
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        var before = view.Top[0].StepSeconds;
        view.Overlap = new CommOverlap(GradReduce: true, ParamGather: true, TensorParallel: true);
        view.Search(ModelPresets.DeepSeekLlm67B, 4096);
        Assert.True(view.Top[0].StepSeconds < before);
        Assert.All(view.Top, e =>
        {
            Assert.True(e.Config.Overlap.GradReduce);
            Assert.Equal(e.Config.Zero == 1, e.Config.Overlap.ParamGather);
            Assert.Equal(e.Config.SequenceParallel, e.Config.Overlap.TensorParallel);
        });
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
        Assert.Equal(
            ParameterBreakdown.Of(ModelPresets.DeepSeekLlm67B).PerLayer.Total / c.Tensor,
            units!.First(u => u.Kind == UnitKind.Layer).Parameters
        );
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
