using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

[Collection(AppCollection.Name)]
public class InterventionsPageTests(BrowserFixture fixture)
{
    private Task<IPage> OpenAsync(string path) => fixture.OpenLiveAsync(path);

    [BrowserFact]
    public async Task TheDefaultsShowWhereTheAnswerIsAndBothMinisRemovalCurvesThenAHeadOpens()
    {
        var page = await OpenAsync("/interventions");
        await page.Locator("[data-testid=iv-run]").ClickAsync();
        await page.Locator("[data-testid=iv-curve] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
        await Assertions
            .Expect(page.Locator("[data-testid=iv-summary]"))
            .ToContainTextAsync("logit difference ␣attention − ␣last");
        await Assertions
            .Expect(page.Locator("[data-testid=iv-tokens] .token-chip.changed"))
            .ToHaveTextAsync("␣read→␣add");
        await page.Locator("[data-testid=iv-residual] .main-svg").First.WaitForAsync();
        await page.Locator("[data-testid=iv-heads] .main-svg").First.WaitForAsync();
        var legend = await page.Locator("[data-testid=iv-curve] .legend").First.TextContentAsync() ?? "";
        Assert.Contains("deepseek-7b-mini (30 layers)", legend);
        Assert.Contains("deepseek-67b-mini (95 layers)", legend);
        await Assertions.Expect(page.Locator("[data-testid=iv-curve-sentence]")).ToHaveCountAsync(2);
        Assert.Contains("clean=", page.Url);
        Assert.Contains("partner=deepseek-67b-mini", page.Url);
        if (BrowserFixture.ScreenshotFolder is { } folder)
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "interventions.png"), FullPage = true });

        // A cell of the head map opens that head on the Attention page (the chart subscribes just after drawing).
        var plot = page.Locator("[data-testid=iv-heads] .nsewdrag").First;
        for (var attempt = 0; attempt < 20 && !page.Url.Contains("/attention"); attempt++)
        {
            var box = (await plot.BoundingBoxAsync())!;
            await page.Mouse.ClickAsync(box.X + box.Width * 0.3f, box.Y + box.Height * 0.5f);
            await page.WaitForTimeoutAsync(500);
        }
        await Assertions
            .Expect(page)
            .ToHaveURLAsync(
                new System.Text.RegularExpressions.Regex("/attention.*layer=\\d+.*head=\\d+"),
                new() { Timeout = 30000 }
            );
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });

        // There, "ablate this head" shows the top predictions before and after at once.
        await page.Locator("[data-testid=ablate-head]").ClickAsync();
        await Assertions
            .Expect(page.Locator("[data-testid=ablation-summary]"))
            .ToContainTextAsync("KL divergence from the plain prediction", new() { Timeout = 30000 });
        await Assertions.Expect(page.Locator("[data-testid=ablation-after] .token-chip")).ToHaveCountAsync(5);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task ALinkRunsItsPromptsAndBadInputSaysWhy()
    {
        // A value the page cannot use is left out with a note saying what is allowed.
        var bad = await OpenAsync("/interventions?method=bogus");
        await Assertions.Expect(bad.Locator("[data-testid=url-notes]")).ToContainTextAsync("method=bogus was left out");
        await bad.CloseAsync();

        // The induction example from a link, ids and attribution: it runs on opening.
        var link =
            "/interventions?model=deepseek-7b-mini&partner=none&ids=1&method=attribution"
            + "&clean=850,2631,3771,3586,3428,558,1344,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558"
            + "&corrupted=850,2631,3771,3586,3428,558,2222,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558"
            + "&answer=1344&wrong=2222";
        var page = await OpenAsync(link);
        await page.Locator("[data-testid=iv-heads] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
        await Assertions.Expect(page.Locator("[data-testid=iv-tokens] .token-chip")).ToHaveCountAsync(18);

        // A corrupted prompt one token longer: the run is refused, naming both lengths; the page stays up.
        var corrupted = page.Locator("input[data-testid=iv-corrupted], [data-testid=iv-corrupted] input").First;
        await corrupted.FillAsync(
            "850,2631,3771,3586,3428,558,2222,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558,1"
        );
        await corrupted.PressAsync("Tab");
        await page.Locator("[data-testid=iv-run]").ClickAsync();
        await Assertions
            .Expect(page.Locator("[data-testid=iv-error]"))
            .ToContainTextAsync("19 tokens and the clean one 18", new() { Timeout = 30000 });
        await page.CloseAsync();
    }
}
