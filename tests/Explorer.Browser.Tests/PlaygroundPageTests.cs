using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

[Collection(AppCollection.Name)]
public class PlaygroundPageTests(BrowserFixture fixture)
{
    [BrowserFact]
    public async Task AShortRunShowsProgressAndALossCurve()
    {
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1200 },
            }
        );
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, "/playground").ToString());
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 30000 });
        var steps = page.Locator("input[data-testid=steps], [data-testid=steps] input").First;
        await steps.FillAsync("8");
        await steps.PressAsync("Tab");
        await page.Locator("[data-testid=train-start]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=jobs] tbody tr")).ToHaveCountAsync(1);
        await page.Locator("[data-testid=loss-curves] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
        await Assertions
            .Expect(page.Locator("[data-testid=job-state]").First)
            .ToHaveTextAsync("Done", new() { Timeout = 120000 });
        await page.Locator("[data-testid=gradient-norms] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        if (BrowserFixture.ScreenshotFolder is { } folder)
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "playground.png") });
        await page.CloseAsync();
    }
}
