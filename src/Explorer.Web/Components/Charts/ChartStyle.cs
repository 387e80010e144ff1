using Plotly.Blazor.LayoutLib;

namespace Explorer.Web.Components.Charts;

/// <summary>One look for every chart: transparent background, theme-aware text, compact margins.</summary>
public static class ChartStyle
{
    public static void Apply(Plotly.Blazor.Layout layout, bool dark)
    {
        var text = dark ? "#e6e6e6" : "#222";
        var grid = dark ? "#444" : "#e5e5e5";
        layout.PaperBgColor = "rgba(0,0,0,0)";
        layout.PlotBgColor = "rgba(0,0,0,0)";
        layout.Font = new Font
        {
            Color = text,
            Family = "Roboto, Helvetica, Arial, sans-serif",
            Size = 12,
        };
        foreach (var axis in layout.XAxis ?? [])
        {
            axis.GridColor = grid;
            axis.ZeroLineColor = grid;
        }
        foreach (var axis in layout.YAxis ?? [])
        {
            axis.GridColor = grid;
            axis.ZeroLineColor = grid;
        }
        layout.Margin ??= new Margin
        {
            L = 60,
            R = 20,
            T = 40,
            B = 50,
        };
    }
}
