using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

[Collection(AppCollection.Name)]
public class PipelinePageTests(BrowserFixture fixture)
{
    [BrowserFact]
    public async Task DraggingABoundaryChangesTheTableAndTheTimeline()
    {
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, "/pipeline").ToString());
        await page.Locator("[data-testid=gantt-a] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        await page.Locator("[data-testid=divisibility] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });

        // The configurations the estimate cannot rank are said to be a tie, and the trade-off chart shows the front.
        await Assertions.Expect(page.Locator("[data-testid=parallel-ties]")).ToContainTextAsync("a tie, not a ranking");
        await page.Locator("[data-testid=parallel-tradeoff] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        Assert.Contains(
            "Pareto front",
            await page.Locator("[data-testid=parallel-tradeoff] .legend").First.TextContentAsync() ?? ""
        );
        if (BrowserFixture.ScreenshotFolder is { } shots)
            await page.Locator("[data-testid=parallel-panel]")
                .ScreenshotAsync(new() { Path = Path.Combine(shots, "parallel-tradeoff.png") });

        var table = page.Locator("[data-testid=plan-a-stages] tbody tr").First;
        var before = await table.InnerTextAsync();
        var gantt = page.Locator("[data-testid=gantt-a] .main-svg").First;
        var ganttBefore = await gantt.InnerHTMLAsync();
        if (BrowserFixture.ScreenshotFolder is { } debug)
            await page.ScreenshotAsync(new() { Path = Path.Combine(debug, "pipeline-before.png") });

        var handle = page.Locator("[data-testid=plan-a-strip] [data-testid=boundary-0]");
        await handle.ScrollIntoViewIfNeededAsync(); // below the parallel configuration panel
        var box = (await handle.BoundingBoxAsync())!;
        await page.Mouse.MoveAsync(box.X + box.Width / 2, box.Y + box.Height / 2);
        await page.Mouse.DownAsync();
        await page.Mouse.MoveAsync(box.X + box.Width / 2 + 60, box.Y + box.Height / 2, new() { Steps = 6 });
        await page.Mouse.UpAsync();

        // The first stage grew: its row in the table changed, the plan became manual, and the Gantt chart redrew.
        await Assertions.Expect(table).Not.ToHaveTextAsync(before);
        await Assertions.Expect(page.Locator("[data-testid=plan-a] h2")).ToContainTextAsync("manual");
        await page.WaitForFunctionAsync(
            "b => document.querySelector('[data-testid=gantt-a] .main-svg').innerHTML !== b",
            ganttBefore
        );

        if (BrowserFixture.ScreenshotFolder is { } folder)
        {
            Directory.CreateDirectory(folder);
            await page.EvaluateAsync("() => window.scrollTo(0, 0)");
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "pipeline.png") });
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "pipeline-full.png"), FullPage = true });
        }

        // The edited plan is in the URL: a reload opens the same split (the units of every stage).
        await Assertions
            .Expect(page)
            .ToHaveURLAsync(new System.Text.RegularExpressions.Regex("method=manual.*boundaries=\\d"));
        var unitCells = page.Locator("[data-testid=plan-a-stages] tbody tr td:nth-child(2)");
        var dragged = await unitCells.AllInnerTextsAsync();
        await page.ReloadAsync();
        await page.Locator("[data-testid=gantt-a] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        await Assertions.Expect(page.Locator("[data-testid=plan-a] h2")).ToContainTextAsync("manual");
        Assert.Equal(dragged, await unitCells.AllInnerTextsAsync());
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task TooManyStagesSaysWhy()
    {
        var page = await fixture.Browser.NewPageAsync();
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, "/pipeline").ToString());
        await page.Locator("[data-testid=gantt-a] .main-svg").First.WaitForAsync(new() { Timeout = 30000 });
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached });
        var stages = page.Locator("input[data-testid=stages], [data-testid=stages] input").First;
        await stages.FillAsync("200");
        await stages.PressAsync("Tab");
        await Assertions
            .Expect(page.Locator("[data-testid=plan-a-refusal]"))
            .ToContainTextAsync("200 stages is more than the 98 units");
        await page.CloseAsync();
    }
}
