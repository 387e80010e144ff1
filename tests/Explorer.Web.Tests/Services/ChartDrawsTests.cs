using Bunit;
using Explorer.Web.Components.Charts;
using Explorer.Web.Services;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public sealed class ChartDrawsTests : BunitTest
{
    [Fact]
    public async Task WorkWaitsUntilEveryChangedChartIsDrawnAndNoLongerThanItsBound()
    {
        var draws = new ChartDraws();
        Assert.True(draws.DrawnAsync(TimeSpan.FromHours(1)).IsCompleted); // nothing to draw: no wait

        draws.Begin();
        draws.Begin();
        var waiting = draws.DrawnAsync(TimeSpan.FromHours(1));
        draws.End();
        Assert.False(waiting.IsCompleted); // one chart is still to be drawn
        draws.End();
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        draws.End(); // an extra end (a chart disposed after drawing) does not count below zero
        Assert.Equal(0, draws.Pending);

        // A browser that never answers holds the work back for the bound only.
        draws.Begin();
        await draws.DrawnAsync(TimeSpan.FromMilliseconds(50)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, draws.Pending);
    }

    [Fact]
    public async Task AChartCountsFromItsFirstFigureAndEachNewOneUntilDrawnAndLeavesNothingBehind()
    {
        var draws = Context.Services.GetService(typeof(ChartDraws)) as ChartDraws;
        LineSeries[] Lines(double y) => [new("a", [1, 2, 3], [y, 2, 3])];
        var cut = Context.Render<LineChart>(p => p.Add(c => c.Id, "l").Add(c => c.Lines, Lines(1)));
        Assert.Equal(0, draws!.Pending); // the first plot is drawn (here, at once)

        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, Lines(2)));
        Assert.Equal(0, draws.Pending); // redrawn
        cut.Render(p => p.Add(c => c.Id, "l").Add(c => c.Lines, Lines(3)));
        await Context.DisposeComponentsAsync();
        Assert.Equal(0, draws.Pending); // a disposed chart counts no more
    }
}
