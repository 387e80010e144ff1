using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

/// <summary>
/// Hostile and careless links, judged by outcome: every page and the API answer without a server error, no body
/// carries a stack frame, a type name or an echoed script, the page stays live in a real browser (its circuit answers
/// a click), and the server logs no unhandled exception.
/// </summary>
[Collection(AppCollection.Name)]
public class HostileUrlTests(BrowserFixture fixture)
{
    /// <summary>60,000 characters: past what the server takes in a request line, so it answers 414 before the app sees
    /// it.</summary>
    private static readonly string LongPrompt = string.Concat(Enumerable.Repeat("hostile ", 7_500));

    /// <summary>A prompt a link can carry (6,000 characters) that is over the 512-token limit.</summary>
    private static readonly string OverTheLimit = string.Join("+", Enumerable.Repeat("w", 3_000));

    public static readonly IReadOnlyList<string> Paths =
    [
        "/layers?compare=maybe",
        "/layers?compare=true&model=deepseek-67b-mini",
        "/layers?compare=%3Cscript%3Ealert(1)%3C/script%3E",
        "/layers?model=%00&prompt=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/layers?stages=abc",
        "/layers?stages=-1",
        "/layers?stages=3",
        "/layers?stages=99999999999999999999",
        "/layers?model=nosuchmodel&prompt=hello",
        "/layers?prompt=" + Uri.EscapeDataString(LongPrompt),
        "/attention?prompt=" + OverTheLimit,
        "/attention?layer=abc&head=%FF",
        "/attention?model=deepseek-7b-mini&layer=-5&head=999999&prompt=x",
        "/attention?layer=1e9",
        "/attention?head=-2&stages=0",
        "/attention?stages=%27%3B--",
        "/attention?model=..%2F..%2Fetc%2Fpasswd",
        "/attention?prompt=%E2%80%AE%F0%9F%98%80%00",
        "/pipeline?stages=99999999999999999999",
        "/pipeline?stages=0&microbatches=-1",
        "/pipeline?schedule=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/pipeline?model=deepseek-7b-mini&stages=4&boundaries=1,1,1",
        "/pipeline?stages=4&boundaries=a,b,c",
        "/pipeline?boundaries=" + string.Join(",", Enumerable.Range(1, 5000)),
        "/pipeline?model=%FF%FE",
        "/pipeline?seq=1e400&mbs=NaN",
        "/pipeline?virtual=-3&schedule=interleaved",
        "/pipeline?method=evil&stages=2",
        "/models?folder=../../etc",
        "/architecture?a=%00&b=..%2F..%2Fx",
        "/playground?experiment=%3Cscript%3E",
        "/api/health?x=" + new string('a', 4000),
        "/api/nothing",
        "/_framework/../../appsettings.json",
        "/error",
        "/layers/%2e%2e/%2e%2e/etc/passwd",
    ];

    /// <summary>What no answer may carry: a .NET stack frame, an exception or namespace-qualified type name, an echoed
    /// script.</summary>
    private static readonly Regex Internals = new(
        @"\s+at [\w.]+\(|Exception:|System\.[A-Z]\w+\.|Explorer\.(Web|Model|Core)\."
            + @"|<script>alert\(1\)|<img src=x onerror",
        RegexOptions.Compiled
    );

    [BrowserFact]
    public async Task EveryPageAnswersAHostileLinkWithoutAServerErrorOrItsInternals()
    {
        Assert.True(Paths.Count >= 30);
        using var http = new HttpClient
        {
            BaseAddress = fixture.Server.BaseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };
        var problems = new List<string>();
        foreach (var path in Paths)
        {
            var response = await http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            if ((int)response.StatusCode >= 500)
                problems.Add($"{Short(path)}: HTTP {(int)response.StatusCode}");
            if (Internals.Match(body) is { Success: true } leak)
                problems.Add($"{Short(path)}: the body carries '{leak.Value}'");
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        AssertNoUnhandledException();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/")).StatusCode); // still serving
    }

    [BrowserFact]
    public async Task ThePagesStayLiveInABrowser()
    {
        using var http = new HttpClient
        {
            BaseAddress = fixture.Server.BaseAddress,
            Timeout = TimeSpan.FromSeconds(60),
        };
        var problems = new List<string>();
        foreach (var path in Paths.Where(p => !p.StartsWith("/api")))
        {
            // What the server refuses before it is a page (404, 414 for a request line past its limit) has no circuit.
            if ((int)(await http.GetAsync(path)).StatusCode >= 400)
                continue;
            var page = await fixture.Browser.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, e) => errors.Add(e);
            await page.GotoAsync(new Uri(fixture.Server.BaseAddress, path).ToString());
            try
            {
                await page.Locator("[data-testid=app-interactive]")
                    .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
                // The circuit answers: the theme toggle re-renders its icon.
                var toggle = page.Locator("[data-testid=theme-toggle]");
                var before = await toggle.InnerHTMLAsync();
                await toggle.ClickAsync();
                await page.WaitForFunctionAsync(
                    "b => document.querySelector('[data-testid=theme-toggle]').innerHTML !== b",
                    before,
                    new() { Timeout = 30000 }
                );
                if (
                    await page.Locator(
                            "#components-reconnect-modal.components-reconnect-show, #blazor-error-ui[style*='block']"
                        )
                        .CountAsync() > 0
                )
                    problems.Add($"{Short(path)}: the circuit broke");
            }
            catch (Exception e) when (e is TimeoutException or PlaywrightException)
            {
                problems.Add($"{Short(path)}: not live ({e.Message.Split('\n')[0]})");
            }
            problems.AddRange(errors.Select(e => $"{Short(path)}: page error {e}"));
            await page.CloseAsync();
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        AssertNoUnhandledException();
    }

    [BrowserFact]
    public async Task APromptTooLongInALinkGetsTheTypedPromptsMessage()
    {
        var page = await fixture.Browser.NewPageAsync();
        await page.GotoAsync(
            new Uri(fixture.Server.BaseAddress, "/layers?model=deepseek-7b-mini&prompt=" + OverTheLimit).ToString()
        );
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
        await Assertions
            .Expect(page.Locator("[data-testid=prompt-error]"))
            .ToContainTextAsync(
                new Regex("The prompt is [\\d,]+ tokens; deepseek-7b-mini takes at most"),
                new() { Timeout = 60000 }
            );
        await Assertions.Expect(page.Locator("[data-testid=prompt-bar]")).ToHaveAttributeAsync("data-runs", "0");
        await page.CloseAsync();
        AssertNoUnhandledException();
    }

    private void AssertNoUnhandledException()
    {
        var log = fixture.Server.Log.Split('\n');
        var first = Array.FindIndex(log, l =>
            l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase)
            || l.Contains("fail:", StringComparison.OrdinalIgnoreCase)
        );
        Assert.True(first < 0, "the server logged:\n" + string.Join('\n', log.Skip(Math.Max(0, first - 1)).Take(25)));
    }

    private static string Short(string path) => path.Length <= 80 ? path : path[..80] + "…";
}
