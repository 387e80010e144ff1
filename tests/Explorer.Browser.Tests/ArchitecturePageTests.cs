using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

[Collection(AppCollection.Name)]
public class ArchitecturePageTests(BrowserFixture fixture)
{
    private async Task<IPage> OpenAsync(string path = "/")
    {
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1200 },
            }
        );
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, path).ToString());
        return page;
    }

    [BrowserFact]
    public async Task RendersBothStacksAndDrawsTheCharts()
    {
        var page = await OpenAsync();
        // Plotly draws its SVG only once the chart's script has run: wait for both charts.
        await page.Locator("[data-testid=parameter-breakdown] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        await page.Locator("[data-testid=ratio-chart] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });

        // The layer stacks are drawn to scale: one rect per decoder layer.
        Assert.Equal(30, await page.Locator("[data-testid=stack-0] rect.stack-layer").CountAsync());
        Assert.Equal(95, await page.Locator("[data-testid=stack-1] rect.stack-layer").CountAsync());
        // Bars drawn for five components in each of the two models.
        Assert.Equal(10, await page.Locator("[data-testid=parameter-breakdown] g.point").CountAsync());
        // The live models load in the background after start; the app bar says when they are up.
        await Assertions
            .Expect(page.Locator("[data-testid=model-status]"))
            .ToContainTextAsync("2 live models", new() { Timeout = 60000 });
        var costs = await page.Locator("[data-testid=cost-table]").InnerTextAsync();
        Assert.Contains("67,425,001,472", costs);
        Assert.Contains("6,910,365,696", costs);

        if (BrowserFixture.ScreenshotFolder is { } folder)
        {
            Directory.CreateDirectory(folder);
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "architecture.png"), FullPage = false });
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "architecture-full.png"), FullPage = true });
        }
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task ChoosingAPresetUpdatesTheFigures()
    {
        var page = await OpenAsync();
        await page.Locator("[data-testid=ratio-chart] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        await page.Locator("[data-testid=preset-b]").ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { Name = "llama-2-70b" }).ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=stack-1] rect.stack-layer")).ToHaveCountAsync(80);
        // LLaMA-2-70B: 68,976,648,192 parameters (Meta's model card: 69B).
        await Assertions.Expect(page.Locator("[data-testid=cost-table]")).ToContainTextAsync("68,976,648,192");
        // The Plotly chart is redrawn in place, not only the tables.
        await Assertions
            .Expect(page.Locator("[data-testid=ratio-chart] .gtitle"))
            .ToContainTextAsync("llama-2-70b relative to deepseek-llm-7b");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task ThemeToggleSwitchesToDarkAndBack()
    {
        var page = await OpenAsync();
        await page.Locator("[data-testid=ratio-chart] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        const string background = "getComputedStyle(document.body).backgroundColor";
        var light = await page.EvaluateAsync<string>(background);
        await page.Locator("[data-testid=theme-toggle]").ClickAsync();
        await page.WaitForFunctionAsync($"{background} !== '{light}'");
        var dark = await page.EvaluateAsync<string>(background);
        Assert.NotEqual(light, dark);
        // Chart text follows the theme.
        await Assertions
            .Expect(page.Locator("[data-testid=ratio-chart] .gtitle"))
            .ToHaveCSSAsync("fill", "rgb(230, 230, 230)");
        if (BrowserFixture.ScreenshotFolder is { } folder)
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "architecture-dark.png") });
        await page.Locator("[data-testid=theme-toggle]").ClickAsync();
        await page.WaitForFunctionAsync($"{background} === '{light}'");
        await page.CloseAsync();
    }
}
