using System.Text.Json;
using Bunit;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Web.Components.Pages.Attention;
using Explorer.Web.Views;
using static TorchSharp.torch;

namespace Explorer.Web.Tests;

public sealed class TraceViewTests : BunitTest, IDisposable
{
    private static readonly ModelSpec Spec = new("view-test", 3, 32, 64, 4, 2, 50, 512);
    private readonly Decoder _decoder = Decoder.Create(Spec, new DecoderOptions { Seed = 3, InitStd = 0.2 });

    private DecoderTrace Trace(int length, TraceOptions? options = null)
    {
        using var tokens = TorchSharp
            .torch.tensor(
                Enumerable.Range(0, length).Select(i => (long)(i * 7 % 50)).ToArray(),
                dtype: ScalarType.Int64
            )
            .unsqueeze(0);
        return _decoder.Trace(tokens, options ?? TraceOptions.Everything);
    }

    private static string[] Pieces(int n) => Enumerable.Range(0, n).Select(i => $"t{i}").ToArray();

    [Fact]
    public void SmallMapsAreSentExactly()
    {
        using var trace = Trace(12);
        var view = HeadMapView.From(trace, 1, 3, Pieces(12));
        var map = trace.HeadMap(1, 3);
        Assert.Equal(1, view.BlockSize);
        Assert.Null(view.Note);
        for (var q = 0; q < 12; q++)
        for (var k = 0; k < 12; k++)
            Assert.Equal(Math.Round(map[q * 12 + k], 3), view.Weights[q][k], 9);
        Assert.Equal(1, view.KvGroup); // head 3 of 4 reads KV head 3 / 2
        Assert.Equal("4: t4", view.QueryLabels[4]);
    }

    [Fact]
    public void LongMapsAreBlockAveragedUnder64KB()
    {
        using var trace = Trace(256, new TraceOptions { LensPositions = [255] });
        var view = HeadMapView.From(trace, 0, 0, Pieces(256));
        // 256 tokens over at most 80 cells: blocks of ⌈256 / 80⌉ = 4 tokens, 64 × 64 cells.
        Assert.Equal(4, view.BlockSize);
        Assert.Equal(64, view.Weights.Length);
        Assert.Contains("blocks of 4", view.Note);
        Assert.True(view.PayloadBytes <= 64 * 1024, $"{view.PayloadBytes} bytes");
        // A cell is the mean of its 4 × 4 block of the full map.
        var map = trace.HeadMap(0, 0);
        double expected = 0;
        for (var q = 8; q < 12; q++)
        for (var k = 4; k < 8; k++)
            expected += map[q * 256 + k];
        Assert.Equal(Math.Round(expected / 16, 3), view.Weights[2][1], 9);
        // Each row of blocks still sums to one over keys once the block widths are counted back.
        Assert.All(view.Weights, row => Assert.InRange(row.Sum() * 4, 0.97, 1.03));
    }

    [Fact]
    public void LastTokenOnlyIsOneRow()
    {
        using var trace = Trace(20);
        var view = HeadMapView.From(trace, 2, 0, Pieces(20), [19]);
        Assert.Single(view.Weights);
        Assert.Equal(20, view.Weights[0].Length);
        Assert.InRange(view.Weights[0].Sum(), 0.99, 1.01);
    }

    [Fact]
    public void LayerSummaryFollowsTheTraceAndExports()
    {
        using var trace = Trace(10);
        var summary = LayerSummary.From("m", trace, Pieces(10), id => $"#{id}");
        Assert.Equal(trace.MeanResidualNorm(2), summary.MeanResidualNorm[2], 9);
        Assert.Equal(trace.GrowthRatio(1), summary.GrowthRatio[1], 9);
        Assert.Equal(3, summary.Layers);
        Assert.Equal([1.0 / 3, 2.0 / 3, 1.0], summary.RelativeDepth);
        // The last layer's lens is the final prediction, so it is top-1 there at the latest.
        Assert.All(summary.FirstTop1Layer, l => Assert.InRange(l, 1, 3));
        var csv = SummaryExport.Csv([summary]).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + 3, csv.Length);
        Assert.StartsWith("m,2,", csv[2]);
        using var json = JsonDocument.Parse(SummaryExport.Json([summary]));
        Assert.Equal(10, json.RootElement[0].GetProperty("tokens").GetArrayLength());
    }

    [Fact]
    public void TheLayerSummaryShowsNoLensThenTheLastPositionThenEveryPosition()
    {
        using var trace = Trace(10, TraceOptions.ForViews(10, attention: false));
        var unread = LayerSummary.From("m", trace, Pieces(10), id => $"#{id}");
        Assert.True(unread.LensPending);
        Assert.Empty(unread.LensPositions);
        Assert.Equal((3, 0), (unread.LensTopToken.GetLength(0), unread.LensTopToken.GetLength(1)));
        Assert.Equal(trace.MeanResidualNorm(2), unread.MeanResidualNorm[2], 9); // the depth charts need no lens
        Assert.Equal("The logit lens at the last position is being read…", LayersView.LensNote(unread));

        trace.ReadLastLens(_decoder);
        var pending = LayerSummary.From("m", trace, Pieces(10), id => $"#{id}");
        Assert.True(pending.LensPending);
        Assert.Equal([9], pending.LensPositions);
        trace.CompleteLens(_decoder);
        var complete = LayerSummary.From("m", trace, Pieces(10), id => $"#{id}");
        Assert.False(complete.LensPending);
        Assert.Equal(Enumerable.Range(0, 10), complete.LensPositions);
        // The last position reads the same either way.
        for (var l = 0; l < 3; l++)
            Assert.Equal(pending.LensTopToken[l, 0], complete.LensTopToken[l, 9]);
        Assert.Equal(pending.FirstTop1Layer[0], complete.FirstTop1Layer[9]);
    }

    [Fact]
    public void HeadGridGroupsHeadsByKvHead()
    {
        using var trace = Trace(8);
        var thumbnails = Enumerable
            .Range(0, 4)
            .Select(h => new HeadThumbnail(h, trace.KvGroup(h), HeadMapView.Thumbnail(trace, 0, h)))
            .ToArray();
        var chosen = -1;
        var cut = Context.Render<HeadGrid>(p =>
            p.Add(c => c.Thumbnails, thumbnails)
                .Add(c => c.Selected, 2)
                .Add(c => c.HeadChosen, h => chosen = h)
                .Add(c => c.Labels, new Dictionary<int, string> { [3] = "induction 0.71" })
        );
        Assert.Equal("induction 0.71", cut.Find("[data-testid=probe-label-3]").TextContent);
        Assert.Empty(cut.FindAll("[data-testid=probe-label-0]"));
        Assert.Equal(2, cut.FindAll("[data-testid=kv-group-0] .head-thumb").Count);
        Assert.Equal(2, cut.FindAll("[data-testid=kv-group-1] .head-thumb").Count);
        Assert.Contains("selected", cut.Find("[data-testid=head-thumb-2]").ClassName);
        cut.Find("[data-testid=head-thumb-1]").Click();
        Assert.Equal(1, chosen);
        // An 8-token map in ⌈8/16⌉ = 1-token blocks: 8 × 8 cells, lower triangle drawn: 36 per head.
        Assert.Equal(36, cut.FindAll("[data-testid=head-thumb-0] rect").Count);
    }

    public void Dispose() => _decoder.Dispose();
}

public class PlotlyPointTests
{
    [Theory]
    [InlineData("L12", 12)]
    [InlineData("h3", 3)]
    [InlineData("layer 5", 5)]
    [InlineData("embedding", -1)]
    [InlineData(null, -1)]
    public void TrailingNumberReadsCategoryLabels(string? label, int expected) =>
        Assert.Equal(
            expected,
            PlotlyPoint.TrailingNumber(label is null ? null : JsonDocument.Parse($"\"{label}\"").RootElement)
        );

    [Fact]
    public void NumbersArriveAsJson() => Assert.Equal(0.25, PlotlyPoint.Number(JsonDocument.Parse("0.25").RootElement));
}

public class PrecisionTests
{
    [Theory]
    [InlineData(0.41827368736, 0.4183)]
    [InlineData(12345.678, 12350)]
    [InlineData(-0.000123456, -0.0001235)]
    [InlineData(0, 0)]
    public void RoundsToSignificantDigits(double value, double expected) =>
        Assert.Equal(expected, Precision.Significant(value), 12);
}
