using Bunit;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;

namespace Explorer.Web.Tests;

/// <summary>A bunit context with MudBlazor's services and loose JS interop (charts draw nothing here).
/// Disposed asynchronously: MudBlazor's services only dispose that way.</summary>
public abstract class BunitTest : IAsyncLifetime
{
    protected BunitContext Context { get; } = new();

    protected BunitTest()
    {
        Context.JSInterop.Mode = JSRuntimeMode.Loose;
        Context.Services.AddMudServices();
        Context.Services.AddScoped<Explorer.Web.Services.TabConnection>();
        Context.Services.AddScoped<Explorer.Web.Services.ChartDraws>();
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Context.DisposeAsync();
}
