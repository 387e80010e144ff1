using System.Text.Json;

namespace Explorer.Browser.Tests;

/// <summary>The server as an attacker meets it: loopback only (hostile links: <see cref="HostileUrlTests"/>).</summary>
public class SecurityTests
{
    [Fact]
    public void TheAppBindsToLoopbackUnlessToldOtherwise()
    {
        using var settings = JsonDocument.Parse(
            File.ReadAllText(Path.Combine(AppServer.RepositoryRoot(), "src", "Explorer.Web", "appsettings.json"))
        );
        var urls = settings.RootElement.GetProperty("Urls").GetString()!.Split(';');
        Assert.All(urls, u => Assert.Equal("127.0.0.1", new Uri(u).Host));
        var hosts = settings.RootElement.GetProperty("AllowedHosts").GetString()!.Split(';');
        Assert.DoesNotContain("*", hosts);
    }
}
