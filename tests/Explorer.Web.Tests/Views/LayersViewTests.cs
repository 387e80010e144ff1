using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Web.Views;
using static TorchSharp.torch;

namespace Explorer.Web.Tests.Views;

public sealed class LayersViewTests : IDisposable
{
    private static readonly ModelSpec Spec = new("layers-view", 6, 32, 64, 4, 2, 50, 512);
    private readonly Decoder _decoder = Decoder.Create(Spec, new DecoderOptions { Seed = 4, InitStd = 0.2 });
    private readonly List<DecoderTrace> _traces = [];

    private LayerSummary Summary(int length, string model = "layers-view")
    {
        using var tokens = TorchSharp
            .torch.tensor(
                Enumerable.Range(0, length).Select(i => (long)(i * 11 % 50)).ToArray(),
                dtype: ScalarType.Int64
            )
            .unsqueeze(0);
        var trace = _decoder.Trace(tokens, TraceOptions.Everything);
        _traces.Add(trace);
        return LayerSummary.From(model, trace, Enumerable.Range(0, length).Select(i => $"t{i}").ToArray(), id =>
            $"#{id}"
        );
    }

    private static LayersView View() => new(name => name == Spec.Name ? Spec : null);

    [Fact]
    public void TheShadedSplitIsTheOneTheLinkOpens()
    {
        var view = View();
        view.SetSummaries([Summary(20)]);
        view.SetStages(4);
        // The optimal split of the analytic costs at the prompt's length, computed here independently of the view.
        var units = CostModel.Units(Spec, new CostSettings { SequenceLength = 20 });
        var expected = BalancedPartitioner.Optimal().Partition(units, 4).Plan!;
        Assert.Equal(expected.Boundaries, view.Split!.Boundaries);
        Assert.Equal(
            "pipeline?model=layers-view&stages=4&seq=20&method=manual"
                + $"&boundaries={string.Join(",", expected.Boundaries)}",
            view.PlanLink()
        );
        // One band per stage, from the embedding (x = 0) to the last layer (x = L), each starting where the last ended.
        Assert.Equal(4, view.Bands!.Count);
        Assert.Equal(-0.5, view.Bands[0].From);
        Assert.Equal(Spec.Layers + 0.5, view.Bands[^1].To);
        for (var i = 1; i < 4; i++)
            Assert.Equal(view.Bands[i - 1].To, view.Bands[i].From);
        // What crosses each boundary that falls between layers: the (b, T, h) residual stream in bf16.
        Assert.All(view.Boundaries, b => Assert.Equal(2L * 20 * Spec.HiddenSize, b.Bytes));
    }

    [Fact]
    public void TheLensCompletingRedrawsOnlyTheLensAndANewPositionOnlyTheNormChart()
    {
        // A trace with the states to read the lens after the forward, as the pages run it.
        using var tokens = TorchSharp.torch.tensor(new long[] { 3, 14, 15, 9, 26, 5 }, dtype: ScalarType.Int64);
        using var input = tokens.unsqueeze(0);
        using var trace = _decoder.Trace(input, TraceOptions.ForViews(6, attention: false));
        var pieces = Enumerable.Range(0, 6).Select(i => $"t{i}").ToArray();
        LayerSummary Summarise() => LayerSummary.From(Spec.Name, trace, pieces, id => $"#{id}");
        var view = View();
        // Before any lens: the depth charts, an empty lens heatmap and no KL line.
        view.SetSummaries([Summarise()]);
        var unread = view.Charts;
        Assert.Empty(unread.PerModel[0].LensLabels);
        Assert.Equal(Spec.Layers, unread.PerModel[0].Lens.Length);
        Assert.All(unread.PerModel[0].Lens, row => Assert.Empty(row));
        Assert.Empty(unread.LensKl);
        Assert.Equal(Spec.Layers, unread.Influence[0].Y.Length);

        trace.ReadLastLens(_decoder);
        view.SetSummaries([Summarise()]);
        var before = view.Charts;
        Assert.Same(unread.Influence, before.Influence);
        Assert.Single(before.PerModel[0].LensLabels);
        Assert.Equal(Spec.Layers, Assert.Single(before.LensKl).Y.Length);

        trace.CompleteLens(_decoder);
        view.SetSummaries([Summarise()]);
        var after = view.Charts;
        // The depth charts and the token heatmap draw the same numbers: the same objects, so no chart resends them.
        Assert.Same(before.Norm, after.Norm);
        Assert.Same(before.Growth, after.Growth);
        Assert.Same(before.Influence, after.Influence);
        Assert.Same(before.Contributions, after.Contributions);
        Assert.Same(before.Update, after.Update);
        Assert.Same(before.PerModel[0].TokenLayer, after.PerModel[0].TokenLayer);
        Assert.Same(before.PerModel[0].TokenColumns, after.PerModel[0].TokenColumns);
        // The lens now covers every position: its heatmap is a new figure.
        Assert.NotSame(before.PerModel[0].Lens, after.PerModel[0].Lens);
        Assert.Equal(6, after.PerModel[0].LensLabels.Length);

        view.SetPosition(5);
        Assert.NotSame(after.Norm, view.Charts.Norm);
        Assert.Same(after.Growth, view.Charts.Growth);
        Assert.Same(after.PerModel[0].Lens, view.Charts.PerModel[0].Lens);
    }

    [Fact]
    public void NoSplitInCompareModeOrForACountNotOffered()
    {
        var view = View();
        view.SetSummaries([Summary(12)]);
        view.SetStages(3);
        Assert.Equal(1, view.Stages);
        Assert.Null(view.PlanLink());
        view.SetStages(2);
        Assert.NotNull(view.PlanLink());
        view.SetCompare(true);
        Assert.Null(view.Split);
        Assert.Null(view.Bands);
    }

    [Fact]
    public void CompareModeLinesUpModelsByRelativeDepth()
    {
        var view = View();
        var summary = Summary(8);
        view.SetSummaries([summary, summary with { Model = "other" }]);
        Assert.Equal([1.0, 2, 3, 4, 5, 6], view.Charts.Growth[0].X);
        view.SetCompare(true);
        Assert.Equal(summary.RelativeDepth, view.Charts.Growth[1].X);
        Assert.Equal([0.0, .. summary.RelativeDepth], view.Charts.Norm[0].X); // the embedding at depth 0
        Assert.Equal(ExplorerTheme.SideColors[1], view.Charts.Growth[1].Color);
        // A click at relative depth 0.5 of a 6-layer model is layer 3 (0-based 2); on the second model's line too.
        Assert.Equal(("other", 2), view.LayerAt(curve: 1, x: 0.5, linesPerModel: 1));
        Assert.Equal(("other", 2), view.LayerAt(curve: 3, x: 0.5, linesPerModel: 2));
        Assert.Null(view.LayerAt(curve: 4, x: 0.5, linesPerModel: 1));
    }

    [Fact]
    public void TheHeatmapShowsTheChosenStatisticInBlocksOfTokens()
    {
        var view = View();
        var summary = Summary(300);
        view.SetSummaries([summary]);
        view.SetStatistic(LayerStatistic.BlockInfluence);
        var charts = view.Charts.PerModel[0];
        // 300 tokens in at most 128 columns: blocks of 3, 100 columns, each the mean of its 3 positions.
        Assert.Equal(3, charts.Block);
        Assert.Equal(100, charts.TokenLayer[0].Length);
        Assert.Equal("3–5", charts.TokenColumns[1]);
        var m = summary.InfluenceByPosition;
        Assert.Equal((m[2, 3] + m[2, 4] + m[2, 5]) / 3.0, charts.TokenLayer[2][1], 9);
        Assert.Equal("layer 1", charts.TokenLayerLabels[0]); // influence is per block: no embedding row
        view.SetStatistic(LayerStatistic.ResidualNorm);
        Assert.Equal("embedding", view.Charts.PerModel[0].TokenLayerLabels[0]);
    }

    [Fact]
    public void APositionPastTheShorterPromptFallsBackToTheMean()
    {
        var view = View();
        view.SetSummaries([Summary(10)]);
        view.SetPosition(7);
        Assert.Equal(7, view.Position);
        Assert.Equal(summaryNorm(view, 7), view.Charts.Norm[0].Y);
        view.SetPosition(50);
        Assert.Equal(9, view.Position); // clamped to the last position
        view.SetSummaries([Summary(5)]);
        Assert.Equal(-1, view.Position);
        Assert.Equal(view.Summaries[0].MeanResidualNorm, view.Charts.Norm[0].Y);

        static double[] summaryNorm(LayersView v, int position) =>
            Enumerable
                .Range(0, Spec.Layers + 1)
                .Select(b => (double)v.Summaries[0].ResidualNormByPosition[b, position])
                .ToArray();
    }

    [Fact]
    public void ThePositionsAreChosenByNameNotByAMagicNumber()
    {
        var view = View();
        view.SetSummaries([Summary(10)]);
        var choices = view.PositionChoices;
        var tokens = view.Summaries[0].Tokens;
        // The mean first, then the last token, then every other position once, each with its token piece.
        Assert.Equal(11, choices.Count);
        Assert.Equal((LayersView.MeanOfPositions, "mean over positions 1…9"), choices[0]);
        Assert.Equal((9, $"last token: 9 ‘{tokens[9]}’"), choices[1]);
        Assert.Equal(Enumerable.Range(0, 9), choices.Skip(2).Select(c => c.Position));
        Assert.Equal($"3 ‘{tokens[3]}’", choices[5].Label);
        Assert.Equal(Enumerable.Range(-1, 11).Order(), choices.Select(c => c.Position).Order());
    }

    public void Dispose()
    {
        foreach (var trace in _traces)
            trace.Dispose();
        _decoder.Dispose();
    }
}
