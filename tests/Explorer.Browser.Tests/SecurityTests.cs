
using System.Text.Json;

namespace Explorer.Browser.Tests;

/// <summary>The server as an attacker or a careless link meets it: loopback only, no stack traces, hostile URLs.</summary>
public class SecurityTests(BrowserFixture fixture) : IClassFixture<BrowserFixture>
{
    [Fact]
    public void TheAppBindsToLoopbackUnlessToldOtherwise()
    {
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppServer.RepositoryRoot(), "src", "Explorer.Web", "appsettings.json")));
        var urls = settings.RootElement.GetProperty("Urls").GetString()!.Split(';');
        Assert.All(urls, u => Assert.Equal("127.0.0.1", new Uri(u).Host));
        var hosts = settings.RootElement.GetProperty("AllowedHosts").GetString()!.Split(';');
        Assert.DoesNotContain("*", hosts);
    }

    [BrowserFact]
    public async Task HostileUrlsGetAPageOrAnErrorWithoutInternals()
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        string[] paths =
        [
            "/layers?model=%00&prompt=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "/attention?model=deepseek-7b-mini&layer=-5&head=999999&prompt=x",
            "/attention?layer=abc&head=%FF",
            "/layers?stages=-1&compare=maybe",
            "/pipeline?stages=99999999999999999999",
            "/models?folder=../../etc",
            "/_framework/../../appsettings.json",
            "/error",
            "/api/health?x=" + new string('a', 4000),
        ];
        foreach (var path in paths)
        {
            var response = await http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.DoesNotContain("   at ", body);           // a .NET stack frame
            Assert.DoesNotContain("Exception:", body);
            Assert.DoesNotContain("<script>alert(1)</script>", body); // the prompt is encoded wherever it is echoed
        }
        Assert.DoesNotContain("Unhandled exception", fixture.Server.Log);
        // Still serving.
        Assert.True((await http.GetAsync("/")).IsSuccessStatusCode);
    }
}
