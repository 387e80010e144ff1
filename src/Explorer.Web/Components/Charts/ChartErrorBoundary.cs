using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;
using Microsoft.AspNetCore.Components.Web;
using Microsoft.JSInterop;

namespace Explorer.Web.Components.Charts;

/// <summary>
/// Keeps a chart's failures to the chart: a tab closed while Plotly draws its first frame (the drawing library's own
/// component then finds no browser to call; nothing is wrong) is ignored, and any other failure to draw is logged and
/// shown in the chart's place instead of breaking the page.
/// </summary>
public sealed class ChartErrorBoundary : ErrorBoundaryBase
{
    [Inject]
    private ILogger<ChartErrorBoundary> Log { get; set; } = null!;

    protected override Task OnErrorAsync(Exception exception)
    {
        if (exception is not (JSDisconnectedException or TaskCanceledException))
            Log.LogWarning(exception, "A chart could not be drawn");
        return Task.CompletedTask;
    }

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        if (CurrentException is null)
            builder.AddContent(0, ChildContent);
        else
        {
            builder.OpenElement(1, "div");
            builder.AddAttribute(2, "class", "chart-note");
            builder.AddAttribute(3, "data-testid", "chart-failed");
            builder.AddContent(4, "This chart could not be drawn.");
            builder.CloseElement();
        }
    }
}
