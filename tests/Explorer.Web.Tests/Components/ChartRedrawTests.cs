using Bunit;
using Explorer.Web.Components.Charts;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

/// <summary>A chart sends its figure to Plotly again only when the figure changed, not whenever its page
/// re-renders.</summary>
public class ChartRedrawTests : BunitTest
{
    private int Redraws =>
        Context.JSInterop.Invocations.Count(i => i.Identifier.Contains("react", StringComparison.OrdinalIgnoreCase));

    private static LineSeries[] Lines(double y) => [new("a", [1, 2, 3], [y, 2, 3])];

    [Fact]
    public void ReRenderingWithTheSameInputsRedrawsNothingAndNewInputsRedrawOnce()
    {
        var lines = Lines(1);
        var cut = Context.Render<LineChart>(p => p.Add(c => c.Id, "l").Add(c => c.Lines, lines).Add(c => c.Title, "t"));
        var before = Redraws;

        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, lines).Add(c => c.Title, "t"));
        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, lines).Add(c => c.Title, "t"));
        Assert.Equal(before, Redraws);

        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, Lines(5)).Add(c => c.Title, "t"));
        Assert.Equal(before + 1, Redraws);

        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, Lines(5)).Add(c => c.Title, "another title"));
        Assert.Equal(before + 2, Redraws);
    }
}
