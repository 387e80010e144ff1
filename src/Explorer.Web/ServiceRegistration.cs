using Explorer.Model.Hosting;
using Explorer.Web.Services;
using Microsoft.Extensions.Options;
using MudBlazor.Services;

namespace Explorer.Web;

public static class ServiceRegistration
{
    /// <summary>Everything the app registers, in one place.</summary>
    public static WebApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddMudServices();

        // The live models: one host for the process, loading the default minis in the background at start.
        builder.Services.Configure<ModelHostOptions>(builder.Configuration.GetSection("Models"));
        builder.Services.PostConfigure<ModelHostOptions>(o =>
        {
            if (!Path.IsPathRooted(o.ModelsFolder))
                o.ModelsFolder = Path.Combine(
                    Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
                    ".explorer",
                    o.ModelsFolder
                );
            o.HubCache = HubCacheLocation.Choose(o.HubCache, Environment.GetEnvironmentVariable);
        });
        builder.Services.AddSingleton(sp => new ModelHost(sp.GetRequiredService<IOptions<ModelHostOptions>>().Value));
        builder.Services.AddHostedService<ModelHostStartup>();
        builder.Services.AddScoped<PromptSession>();
        builder.Services.AddScoped<InterventionSession>();
        builder.Services.AddScoped<ChartDraws>();
        builder.Services.AddSingleton(sp => new Explorer.Model.Training.TrainingJobs(
            Path.Combine(sp.GetRequiredService<ModelHost>().Folder.Root, "runs")
        ));
        builder.Services.AddSingleton<CircuitCounter>();
        builder.Services.AddSingleton<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler>(sp =>
            sp.GetRequiredService<CircuitCounter>()
        );
        builder.Services.AddScoped<TabConnection>();
        builder.Services.AddScoped<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler, TabClosedHandler>();
        return builder;
    }
}
