using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Training;
using Explorer.Web.Views;
using static TorchSharp.torch;

namespace Explorer.Web.Tests.Views;

public sealed class AttentionViewTests : IDisposable
{
    private static readonly ModelSpec Spec = new("attention-view", 4, 32, 64, 4, 2, 50, 512);
    private readonly Decoder _decoder = Decoder.Create(Spec, new DecoderOptions { Seed = 8, InitStd = 0.2 });
    private readonly List<DecoderTrace> _traces = [];

    private DecoderTrace Trace(int length)
    {
        using var tokens = TorchSharp
            .torch.tensor(
                Enumerable.Range(0, length).Select(i => (long)(i * 13 % 50)).ToArray(),
                dtype: ScalarType.Int64
            )
            .unsqueeze(0);
        var trace = _decoder.Trace(tokens, TraceOptions.Everything);
        _traces.Add(trace);
        return trace;
    }

    private static string[] Pieces(int n) => Enumerable.Range(0, n).Select(i => $"t{i}").ToArray();

    [Fact]
    public void TheFocusIsClampedToTheModelAndTheMeanHeadAveragesTheHeads()
    {
        var view = new AttentionView(layer: 9, head: 7);
        var trace = Trace(10);
        view.Show(trace, Pieces(10));
        Assert.Equal((3, 3), (view.Layer, view.Head));
        Assert.Equal(4, view.Thumbnails.Count);
        Assert.Equal([0, 0, 1, 1], view.Thumbnails.Select(t => t.KvGroup)); // 4 heads over 2 KV heads
        view.SetHead(AttentionView.MeanOfHeads);
        var maps = Enumerable.Range(0, 4).Select(h => trace.HeadMap(3, h)).ToArray();
        // Row 6, key 2: the mean of the four heads' weights (each rounded to 3 decimals as sent), rounded again.
        var expected = Math.Round(maps.Average(m => Math.Round(m[6 * 10 + 2], 3)), 3);
        Assert.Equal(expected, view.Map!.Weights[6][2], 9);
        Assert.Equal("Layer 4: mean of all heads", view.MapTitle);
    }

    [Fact]
    public void QueriesPickTheRowsSent()
    {
        var view = new AttentionView(layer: 1, head: 2);
        view.Show(Trace(12), Pieces(12));
        Assert.Equal(12, view.Map!.Weights.Length);
        view.SetQueries(QueryChoice.Last);
        Assert.Equal(["11: t11"], view.Map!.QueryLabels);
        view.SetQueries(QueryChoice.One);
        Assert.Equal(11, view.Query); // starts at the last token
        view.SetQuery(4);
        Assert.Equal(["4: t4"], view.Map!.QueryLabels);
        Assert.Equal(5, view.Map.KeyLabels.Count); // keys after the query carry no weight: not sent
    }

    [Fact]
    public void TheLayersStageIsTheOneTheLayersPageShades()
    {
        var trace = Trace(16);
        var units = CostModel.Units(Spec, new CostSettings { SequenceLength = 16 });
        var plan = BalancedPartitioner.Optimal().Partition(units, 2).Plan!;
        var second = plan.Stages[1];
        var layer = Math.Max(1, second.FirstUnit) - 1; // the first layer of stage 2, 0-based
        var view = new AttentionView(layer: layer, stages: 2);
        view.Show(trace, Pieces(16));
        Assert.Equal(
            $"pipeline stage 2 of 2 (layers {Math.Max(1, second.FirstUnit)}–{Math.Min(Spec.Layers, second.LastUnit)})",
            view.StageOfLayer()
        );
        Assert.Null(new AttentionView(stages: 1).StageOfLayer());
    }

    [Fact]
    public void ProbeLabelsNameTheHeadsOverTheThresholdOfTheLayerInFocus()
    {
        var view = new AttentionView(layer: 1);
        view.Show(Trace(8), Pieces(8));
        HeadScore[] scores = [new(1, 0, 0.9, 0.1), new(1, 1, 0.2, 0.5), new(1, 2, 0.49, 0.3), new(2, 3, 0.95, 0.0)];
        view.SetProbe("m", scores);
        var labels = view.ProbeLabels("m");
        Assert.Equal([0, 1], labels.Keys.Order());
        Assert.Equal("induction 0.90", labels[0]);
        Assert.Equal("prev 0.50", labels[1]);
        Assert.Empty(view.ProbeLabels("another model"));
        Assert.Contains("2 heads score ≥ 0.5 as induction heads, 1 as previous-token heads", view.ProbeSummary());
    }

    [Fact]
    public void ASummaryClickFocusesItsHeadAndAnotherTraceRedrawsTheThumbnails()
    {
        var view = new AttentionView();
        var first = Trace(8);
        view.Show(first, Pieces(8));
        Assert.True(view.Click(layerLabelNumber: 2, headLabelNumber: 3)); // "L2", "h3"
        Assert.Equal((1, 3), (view.Layer, view.Head));
        Assert.False(view.Click(layerLabelNumber: 0, headLabelNumber: 1));
        Assert.False(view.Click(layerLabelNumber: 5, headLabelNumber: 1));
        var thumbnails = view.Thumbnails;
        view.Show(Trace(9), Pieces(9));
        Assert.NotSame(thumbnails, view.Thumbnails);
        Assert.Equal(9, view.Thumbnails[0].Map.Length); // 9 tokens fit 16 cells: one row each
    }

    public void Dispose()
    {
        foreach (var trace in _traces)
            trace.Dispose();
        _decoder.Dispose();
    }
}
