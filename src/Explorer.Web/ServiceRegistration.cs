using MudBlazor.Services;

namespace Explorer.Web;

public static class ServiceRegistration
{
    /// <summary>Everything the app registers, in one place.</summary>
    public static WebApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddMudServices();
        return builder;
    }
}
