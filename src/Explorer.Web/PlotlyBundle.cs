using Microsoft.Net.Http.Headers;

namespace Explorer.Web;

/// <summary>
/// The plotly.js the charts run. Plotly.Blazor asks for its full bundle, 4.8 MB of script that every new tab compiles
/// before its first chart; Explorer draws scatter, bar and heatmap traces only, which plotly.js's cartesian bundle of
/// the same version holds in 1.4 MB (wwwroot/lib/plotly). The server answers Plotly.Blazor's request with that one,
/// and lets the browser keep it for <see cref="Lifetime"/>.
/// </summary>
public static class PlotlyBundle
{
    /// <summary>The script Plotly.Blazor (7.2.0, pinned in Directory.Packages.props) requests: plotly.js
    /// 3.7.0.</summary>
    public const string Requested = "/_content/Plotly.Blazor/plotly-3.7.0.min.js";

    /// <summary>Plotly.Blazor's interop module (wwwroot/js/explorer.js imports it by the same name).</summary>
    public const string Interop = "_content/Plotly.Blazor/plotly-interop-7.2.0.js";

    /// <summary>The cartesian bundle of the same plotly.js version, in the app's web root.</summary>
    public const string Served = "/lib/plotly/plotly-cartesian-3.7.0.min.js";

    /// <summary>
    /// How long a browser keeps the bundle without asking again. The static assets' default for an address without a
    /// fingerprint is <c>no-cache</c>, with which Chromium keeps no compiled code for the script, so every new tab
    /// compiles it again before its first chart (docs/benchmarks.md). The address names the plotly.js version and
    /// whatever answers it is that version, so a kept copy is never the wrong plotly.js; Plotly.Blazor's address (which
    /// Explorer cannot choose) has no fingerprint, so the lifetime is a week rather than the fingerprinted assets'
    /// year.
    /// </summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromDays(7);

    /// <summary>Routes a request for <see cref="Requested"/> as one for <see cref="Served"/>, before routing, so the
    /// static file that answers is the cartesian bundle; its response may be kept for <see cref="Lifetime"/>.</summary>
    public static IApplicationBuilder UseCartesianPlotly(this IApplicationBuilder app) =>
        app.Use(
            (context, next) =>
            {
                if (context.Request.Path.Equals(Requested, StringComparison.Ordinal))
                {
                    context.Request.Path = Served;
                    var response = context.Response;
                    response.OnStarting(() =>
                    {
                        if (response.StatusCode is StatusCodes.Status200OK or StatusCodes.Status304NotModified)
                            response.Headers.CacheControl = new CacheControlHeaderValue
                            {
                                Public = true,
                                MaxAge = Lifetime,
                            }.ToString();
                        return Task.CompletedTask;
                    });
                }
                return next(context);
            }
        );
}
