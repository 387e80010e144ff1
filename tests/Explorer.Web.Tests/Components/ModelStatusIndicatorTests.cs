using Bunit;
using Explorer.Model.Hosting;
using Explorer.Web.Components.Layout;
using Microsoft.Extensions.DependencyInjection;

namespace Explorer.Web.Tests;

public class ModelStatusIndicatorTests : BunitTest
{
    [Fact]
    public async Task ShowsLoadingThenTheLiveModels()
    {
        var root = Directory.CreateTempSubdirectory("explorer-web-");
        var host = new ModelHost(new ModelHostOptions { ModelsFolder = root.FullName, Device = "cpu" });
        try
        {
            Context.Services.AddSingleton(host);
            var cut = Context.Render<ModelStatusIndicator>();
            Assert.Contains("loading models", cut.Find("[data-testid=model-status]").TextContent);
            await host.LoadDefaultModelsAsync();
            await cut.WaitForAssertionAsync(
                () => Assert.Contains("2 live models", cut.Find("[data-testid=model-status]").TextContent),
                TimeSpan.FromSeconds(30)
            );
        }
        finally
        {
            await host.DisposeAsync();
            root.Delete(true);
        }
    }
}
