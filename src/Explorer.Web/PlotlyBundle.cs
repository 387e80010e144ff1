namespace Explorer.Web;

/// <summary>
/// The plotly.js the charts run. Plotly.Blazor asks for its full bundle, 4.8 MB of script that every new tab compiles
/// before its first chart; Explorer draws scatter, bar and heatmap traces only, which plotly.js's cartesian bundle of
/// the same version holds in 1.4 MB (wwwroot/lib/plotly). The server answers Plotly.Blazor's request with that one.
/// </summary>
public static class PlotlyBundle
{
    /// <summary>The script Plotly.Blazor (7.2.0, pinned in Directory.Packages.props) requests: plotly.js
    /// 3.7.0.</summary>
    public const string Requested = "/_content/Plotly.Blazor/plotly-3.7.0.min.js";

    /// <summary>The cartesian bundle of the same plotly.js version, in the app's web root.</summary>
    public const string Served = "/lib/plotly/plotly-cartesian-3.7.0.min.js";

    /// <summary>Routes a request for <see cref="Requested"/> as one for <see cref="Served"/>: before routing, so the
    /// static file that answers is the cartesian bundle.</summary>
    public static IApplicationBuilder UseCartesianPlotly(this IApplicationBuilder app) =>
        app.Use(
            (context, next) =>
            {
                if (context.Request.Path.Equals(Requested, StringComparison.Ordinal))
                    context.Request.Path = Served;
                return next(context);
            }
        );
}
