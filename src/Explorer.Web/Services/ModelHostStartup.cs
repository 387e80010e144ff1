using Explorer.Model.Hosting;

namespace Explorer.Web.Services;

/// <summary>Loads the default models after the server has started, so the first page never waits for them.</summary>
public sealed class ModelHostStartup(ModelHost host, ILogger<ModelHostStartup> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!host.Options.LoadDefaultModels)
            return;
        await Task.Yield();
        await host.LoadDefaultModelsAsync();
        foreach (var status in host.Models)
            logger.LogInformation("Model {Name}: {State} ({Message})", status.Name, status.State, status.Message);
    }
}
