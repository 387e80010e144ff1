using Explorer.Model.Hosting;
using Explorer.Model.Pipeline;
using Explorer.Web;
using Explorer.Web.Components;
using Explorer.Web.Services;

// Before libtorch loads: its threads sleep, not spin, while they wait (a browser beside the server keeps its cores).
OmpWaitPolicy.PreferPassive();
var builder = WebApplication.CreateBuilder(args);

// Static web assets (the top-level wwwroot/, MudBlazor, Plotly.Blazor, blazor.web.js) are served from where they
// live outside Development too, so `dotnet run` works without a publish.
builder.WebHost.UseStaticWebAssets();
builder.AddApplicationServices();

var app = builder.Build();
if (!app.Environment.IsDevelopment())
    app.UseExceptionHandler("/error", createScopeForErrors: true);
app.UseCartesianPlotly(); // before routing: Plotly.Blazor's request for plotly.js is answered by the smaller bundle
app.UseRouting();
app.UseAntiforgery();
app.MapStaticAssets();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

// For operators and the soak test: model states, the work queue, open tabs, memory (never prompts or traces).
app.MapGet("/api/health", (ModelHost host, CircuitCounter circuits) => HealthReport.From(host, circuits));
app.Run();

/// <summary>Entry point, visible to tests.</summary>
public partial class Program;
