using Explorer.Core.Parallel;
using Explorer.Web.Components.Pages.Pipeline;
using Explorer.Web.Views;

namespace Explorer.Web.Tests.Views;

public class ParallelPanelQueryTests
{
    [Fact]
    public void ThePanelsSearchRoundTripsThroughTheUrl()
    {
        var view = new ParallelPlannerView
        {
            Gpus = 128,
            GlobalBatch = 512,
            Engine = "torchtitan",
            Overlap = new CommOverlap(true, true, false),
            FlashAttention = false,
        };
        view.SelectGpu(Gpu.H100_80GB.Key);
        var written = ParallelPanelQuery.Write(view);
        Assert.Equal(Gpu.H100_80GB.Key, written["gpu"]);
        Assert.Equal("grad,param", written["overlap"]);
        Assert.Equal("unfused", written["attention"]);
        var read = new ParallelPlannerView();
        var notes = ParallelPanelQuery.Read(read, key =>
            written.TryGetValue(key, out var value) ? value?.ToString() : null
        );
        Assert.Empty(notes);
        Assert.False(read.FlashAttention);
        Assert.Equal(
            (Gpu.H100_80GB.Key, 128, 512, "torchtitan", new CommOverlap(true, true, false)),
            (read.GpuKey, read.Gpus, read.GlobalBatch, read.Engine, read.Overlap)
        );
        // The defaults write nothing: a plain link stays plain.
        Assert.All(ParallelPanelQuery.Write(new ParallelPlannerView()).Values, Assert.Null);
    }

    [Fact]
    public void ValuesThatCannotBeUsedAreLeftOutWithANote()
    {
        var view = new ParallelPlannerView();
        var query = new Dictionary<string, string>
        {
            ["gpu"] = "v100",
            ["gpus"] = "0",
            ["engine"] = "nvidia",
            ["overlap"] = "grad,dp",
            ["batch"] = "64",
            ["attention"] = "sdpa",
        };
        var notes = ParallelPanelQuery.Read(view, key => query.GetValueOrDefault(key));
        Assert.Equal(5, notes.Count);
        Assert.Contains(notes, n => n.StartsWith("attention=sdpa was left out: flash or unfused"));
        Assert.True(view.FlashAttention);
        Assert.Contains(notes, n =>
            n.StartsWith("engine=nvidia was left out: use one of megatron, torchtitan, deepspeed, any")
        );
        Assert.Contains(notes, n => n.StartsWith("overlap=grad,dp was left out"));
        Assert.Equal(64, view.GlobalBatch); // the good value is kept
        Assert.Equal("megatron", view.Engine);
        // Megatron's rule: the weight gather needs the gradient overlap, so param alone brings grad along.
        ParallelPanelQuery.Read(view, key => key == "overlap" ? "param" : null);
        Assert.Equal(new CommOverlap(true, true, false), view.Overlap);
    }
}
