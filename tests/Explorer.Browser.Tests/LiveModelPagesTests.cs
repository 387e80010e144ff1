using System.Diagnostics;
using Explorer.Core.Specs;
using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

[Collection(AppCollection.Name)]
public class LiveModelPagesTests(BrowserFixture fixture)
{
    private Task<IPage> OpenAsync(string path) => fixture.OpenLiveAsync(path);

    private static async Task RunPromptAsync(IPage page, string prompt)
    {
        var box = page.Locator("[data-testid=prompt-text] input, input[data-testid=prompt-text]").First;
        await box.FillAsync(prompt);
        await page.Locator("[data-testid=prompt-run]").ClickAsync();
    }

    [BrowserFact]
    public async Task ALensTooLongToRunUnaskedWaitsForItsButton()
    {
        // A server that lets no lens run unasked, as the 7B's (about 2 s) does not: every chart but the lens at the
        // other positions is drawn from the forward, and a button runs the rest.
        await using var server = await AppServer.StartAsync(
            new Dictionary<string, string> { ["Models__AutomaticLensMs"] = "0" }
        );
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        var prompt = Uri.EscapeDataString("The lens waits for its button here.");
        await page.GotoAsync(new Uri(server.BaseAddress, $"/layers?model=deepseek-7b-mini&prompt={prompt}").ToString());
        var button = page.Locator("[data-testid=lens-every-position]");
        await button.WaitForAsync(new() { Timeout = 90000 });
        await Assertions.Expect(button).ToContainTextAsync("Lens at every position (about ");
        var timings = page.Locator("[data-testid=run-timings]");
        await Assertions.Expect(timings).ToHaveAttributeAsync("data-lens-on-request", "true");
        await Assertions.Expect(timings).ToContainTextAsync("lens at every position on request");
        await Assertions
            .Expect(page.Locator(".chart-note", new() { HasText = "final prediction at the last position" }))
            .ToContainTextAsync("runs when asked");
        // The lens at the last position alone (read before the button was offered; Plotly draws it after the render
        // that showed the button).
        await page.WaitForFunctionAsync(
            "id => document.querySelector(`[data-testid=${id}] .js-plotly-plot`)?.data?.[0]?.z?.[0]?.length === 1",
            "logit-lens-0",
            new() { Timeout = 60000 }
        );
        await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync();

        await button.ClickAsync();
        await Assertions
            .Expect(timings)
            .ToHaveAttributeAsync(
                "data-lens-done",
                new System.Text.RegularExpressions.Regex(@"^\d+$"),
                new() { Timeout = 60000 }
            );
        await Assertions.Expect(button).ToHaveCountAsync(0);
        var tokens = await page.Locator("[data-testid=token-chips] .token-chip").CountAsync();
        await page.WaitForFunctionAsync(
            "([id, n]) => document.querySelector(`[data-testid=${id}] .js-plotly-plot`)"
                + "?.data?.[0]?.z?.[0]?.length === n",
            new object[] { "logit-lens-0", tokens },
            new() { Timeout = 60000 }
        );
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task RunALayerThenItsHeads()
    {
        var page = await OpenAsync("/layers");
        await RunPromptAsync(page, "Attention is all you need, and attention is what we see.");
        try
        {
            await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        }
        catch (TimeoutException)
        {
            await page.ScreenshotAsync(new() { Path = "/tmp/shots/debug-layers.png", FullPage = true });
            throw;
        }
        await Assertions.Expect(page.Locator("[data-testid=token-chips]")).ToContainTextAsync("Attention");
        await page.Locator("[data-testid=logit-lens-0] .main-svg").First.WaitForAsync();

        // Click the 6th layer's point: the Attention page opens on that layer.
        // The chart subscribes to clicks just after it draws; on a loaded machine the first click can come earlier.
        for (var attempt = 0; attempt < 20 && !page.Url.Contains("/attention"); attempt++)
        {
            var point = page.Locator("[data-testid=residual-norm] .scatterlayer .point").Nth(6);
            var box = (await point.BoundingBoxAsync())!;
            await page.Mouse.ClickAsync(box.X + box.Width / 2, box.Y + box.Height / 2);
            await page.WaitForTimeoutAsync(500);
        }
        await Assertions
            .Expect(page)
            .ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/attention.*layer=5"), new() { Timeout = 30000 });
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions
            .Expect(page.Locator("[data-testid=head-grid] .head-thumb"))
            .ToHaveCountAsync(MiniPresets.DeepSeek7BMini.AttentionHeads);

        // Another head: the focused heatmap changes.
        var map = page.Locator("[data-testid=head-map] .main-svg").First;
        var before = await map.InnerHTMLAsync();
        await page.Locator("[data-testid=head-thumb-3]").ClickAsync();
        await page.WaitForFunctionAsync(
            "b => document.querySelector('[data-testid=head-map] .main-svg').innerHTML !== b",
            before
        );
        await Assertions.Expect(page.Locator("[data-testid=head-map] .gtitle")).ToContainTextAsync("head 3");
        Assert.Contains("head=3", page.Url);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task LogAxesReadInFullNumbers()
    {
        var page = await OpenAsync("/layers");
        await RunPromptAsync(page, "The planner splits eight devices.");
        var norm = page.Locator("[data-testid=residual-norm]");
        await norm.Locator(".main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        // Every log axis on the page: each label a full number, increasing up the axis (Plotly's own labels read
        // "…, 100, 2" where 2 meant 200).
        foreach (var chart in new[] { "residual-norm", "contributions" })
        {
            var labels = await page.Locator($"[data-testid={chart}] .yaxislayer-above .ytick text")
                .AllTextContentsAsync();
            Assert.True(labels.Count >= 2, $"{chart}: {string.Join(", ", labels)}");
            var values = labels
                .Select(l => double.Parse(l.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture))
                .ToList();
            Assert.Equal(values.Order(), values);
            Assert.Equal(values.Count, values.Distinct().Count());
        }
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task CompareModeShowsBothModels()
    {
        var page = await OpenAsync("/layers");
        await page.Locator("[data-testid=compare] input, input[data-testid=compare]").First.CheckAsync();
        await RunPromptAsync(page, "The quick brown fox jumps over the lazy dog.");
        await page.Locator("[data-testid=token-layer-1] .main-svg").First.WaitForAsync(new() { Timeout = 90000 });
        var legend = await page.Locator("[data-testid=residual-norm] .legend").First.TextContentAsync() ?? "";
        Assert.Contains("deepseek-7b-mini", legend);
        Assert.Contains("deepseek-67b-mini", legend);
        Assert.Contains("model=deepseek-7b-mini", page.Url);
        Assert.Contains("compare=deepseek-67b-mini", page.Url); // the switch picks the other mini
        if (BrowserFixture.ScreenshotFolder is { } folder)
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "layers-compare.png") });
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task StageBandsOnTheLayersPageLeadToThePlanner()
    {
        var page = await OpenAsync("/layers?model=deepseek-7b-mini");
        await RunPromptAsync(page, "Where would the pipeline cut this model?");
        await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await page.Locator("[data-testid=stage-bands]").ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { Name = "4 stages" }).ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=boundaries] tbody tr")).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("[data-testid=boundaries]")).ToContainTextAsync("residual stream");
        // Four shaded stages on the depth chart.
        await Assertions
            .Expect(page.Locator("[data-testid=residual-norm] .layer-below .shapelayer path"))
            .ToHaveCountAsync(4);
        if (BrowserFixture.ScreenshotFolder is { } folder)
        {
            await page.Locator("[data-testid=theme-toggle]").ClickAsync();
            await page.WaitForTimeoutAsync(1000);
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "layers-dark.png"), FullPage = true });
            await page.Locator("[data-testid=theme-toggle]").ClickAsync();
        }
        // The link carries the split shown (at the prompt's length); the planner opens exactly it: stage i + 1 starts
        // at the link's i-th boundary unit (unit u is layers.(u − 1), 0 the embedding).
        var link = await page.Locator("[data-testid=plan-this]").GetAttributeAsync("href");
        var match = System.Text.RegularExpressions.Regex.Match(
            link!,
            "^pipeline\\?model=deepseek-7b-mini&stages=4&seq=\\d+&method=manual&boundaries=(\\d+),(\\d+),(\\d+)$"
        );
        Assert.True(match.Success, link);
        await page.Locator("[data-testid=plan-this]").ClickAsync();
        await Assertions
            .Expect(page.Locator("[data-testid=plan-a-stages] tbody tr"))
            .ToHaveCountAsync(4, new() { Timeout = 30000 });
        var units = await page.Locator("[data-testid=plan-a-stages] tbody tr td:nth-child(2)").AllInnerTextsAsync();
        for (var i = 1; i <= 3; i++)
        {
            var unit = int.Parse(match.Groups[i].Value);
            var layers = MiniPresets.DeepSeek7BMini.Layers;
            var name =
                unit <= layers ? $"layers.{unit - 1}"
                : unit == layers + 1 ? "norm+lm_head"
                : "loss";
            Assert.StartsWith(name, units[i].Trim());
        }
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task TheAttentionPageSaysWhichStageALayerIsIn()
    {
        var page = await OpenAsync("/attention?model=deepseek-7b-mini&prompt=Stages%20too&layer=0&head=0&stages=4");
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions
            .Expect(page.Locator("[data-testid=layer-stage]"))
            .ToContainTextAsync("pipeline stage 1 of 4 (layers 1–");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task LongPromptsAreShownAsBlocks()
    {
        var page = await OpenAsync("/layers?model=deepseek-7b-mini");
        await RunPromptAsync(
            page,
            string.Join(' ', Enumerable.Repeat("The quick brown fox jumps over the lazy dog.", 20))
        );
        await page.Locator("[data-testid=token-layer-0] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions
            .Expect(page.Locator(".chart-note").First)
            .ToContainTextAsync("320 tokens shown as blocks of 3");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task HeatmapRowLabelsAndTheirAxisTitleFitBesideThePlot()
    {
        // A fixed left margin clipped the first row's label to "mbedding" and drew the axis title over the labels.
        var page = await OpenAsync("/layers?model=deepseek-7b-mini");
        await RunPromptAsync(page, "Labels fit");
        var chart = page.Locator("[data-testid=token-layer-0] .js-plotly-plot").First;
        var rowLabels = page.Locator("[data-testid=token-layer-0] .yaxislayer-above .ytick text");
        await rowLabels.First.WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
        // Every row label starts inside the chart, and the axis title's box meets none of theirs.
        await page.WaitForFunctionAsync(
            @"g => {
            const svg = g.querySelector('.main-svg').getBoundingClientRect();
            const labels = [...g.querySelectorAll('.yaxislayer-above .ytick text')].map(t => t.getBoundingClientRect());
            const title = g.querySelector('.ytitle').getBoundingClientRect();
            const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
            return labels.every(l => l.left >= svg.left && !meets(l, title)) && title.left >= svg.left;
        }",
            await chart.ElementHandleAsync(),
            new() { Timeout = 10000 }
        );
        Assert.Contains("embedding", await rowLabels.AllTextContentsAsync());
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task EmptyPromptSaysSoAndTheServerStaysUp()
    {
        var page = await OpenAsync("/layers");
        await RunPromptAsync(page, "");
        await Assertions.Expect(page.Locator("[data-testid=prompt-error]")).ToContainTextAsync("empty");
        await RunPromptAsync(page, "still working");
        await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task PlotlyLoadsWithThePageBeforeAnyChartAsksForIt()
    {
        // explorer.js starts loading plotly.js as the page loads; Plotly.Blazor's own import, when the first chart
        // renders, must find the same script (the names in explorer.js follow the pinned Plotly.Blazor version), and
        // the charts draw with the cartesian bundle the server answers with.
        var page = await OpenAsync("/layers");
        Assert.True(
            await page.EvaluateAsync<bool>("() => window.explorer.plotlyLoaded"),
            "explorer.js could not load Plotly.Blazor's interop module and plotly.js: do the names in "
                + "wwwroot/js/explorer.js match the Plotly.Blazor package?"
        );
        Assert.Equal(0, await page.Locator(".chart-frame").CountAsync()); // no chart on the page yet
        Assert.True(
            await page.EvaluateAsync<bool>(
                "() => typeof window.Plotly === 'object' && document.getElementById('plotly-import') !== null"
            )
        );
        await RunPromptAsync(page, "Plotly was already here when this chart was drawn.");
        await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        Assert.Equal(1, await page.Locator("script#plotly-import").CountAsync()); // loaded once
        // The page's head asked for both early, by the addresses the page then loaded (a preload of another address
        // would be a second download, not an early one).
        var preloaded = await page.EvaluateAsync<string[]>(
            "() => [...document.querySelectorAll('link[rel=modulepreload], link[rel=preload][as=script]')]"
                + ".map(l => l.href)"
        );
        var loaded = await page.EvaluateAsync<string[]>(
            "() => performance.getEntriesByType('resource').filter(e => e.name.includes('plotly')).map(e => e.name)"
        );
        Assert.Equal(2, preloaded.Count(href => href.Contains("plotly")));
        Assert.All(preloaded.Where(href => href.Contains("plotly")), href => Assert.Contains(href, loaded));
        Assert.Equal(2, loaded.Distinct().Count());
        // The script the charts ran is the one Plotly.Blazor asked for (its import replaces an element of another
        // source), and what answers that address is plotly.js's cartesian bundle of the version it names.
        var src = await page.EvaluateAsync<string>("() => document.getElementById('plotly-import').src");
        await page.CloseAsync();
        var version = System.Text.RegularExpressions.Regex.Match(src, @"/plotly-([\d.]+)\.min\.js$").Groups[1].Value;
        Assert.NotEqual("", version);
        using var http = new HttpClient();
        using var response = await http.GetAsync(src);
        response.EnsureSuccessStatusCode();
        Assert.StartsWith(
            $"/**\n* plotly.js (cartesian - minified) v{version}\n",
            await response.Content.ReadAsStringAsync()
        );
        // A browser may keep it (Chromium keeps the compiled script only with a response it may keep), for a week.
        var caching = response.Headers.CacheControl!;
        Assert.False(caching.NoCache, $"plotly.js is served with Cache-Control: {caching}");
        Assert.False(caching.NoStore, $"plotly.js is served with Cache-Control: {caching}");
        Assert.Equal(TimeSpan.FromDays(7), caching.MaxAge);
    }

    [BrowserFact]
    public async Task ASharedLinkRunsItsForwardOnceStartedWhileThePageLoads()
    {
        // The server's prerender of the link starts the forward; the live page joins it, or takes it from the cache,
        // instead of running it a second time.
        using var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress };
        async Task<long> ForwardsAsync()
        {
            using var health = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/health"));
            return health.RootElement.GetProperty("forwards").GetInt64();
        }
        var before = await ForwardsAsync();
        var prompt = $"Started while the page loads {Guid.NewGuid():N}";
        var page = await OpenAsync("/layers?model=deepseek-7b-mini&prompt=" + Uri.EscapeDataString(prompt));
        var timings = page.Locator("[data-testid=run-timings]");
        await Assertions.Expect(timings).ToContainTextAsync("started while the page loaded", new() { Timeout = 60000 });
        var queued = long.Parse((await timings.GetAttributeAsync("data-forward-queued"))!);
        var requested = long.Parse((await timings.GetAttributeAsync("data-requested"))!);
        Assert.True(queued < requested, $"forward queued at {queued}, the live page's run asked at {requested}");
        Assert.Equal(before + 1, await ForwardsAsync());
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task SharedLinkRunsItsPrompt()
    {
        var page = await OpenAsync("/attention?model=deepseek-67b-mini&prompt=Shared%20links%20reload&layer=10&head=3");
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions
            .Expect(page.Locator("[data-testid=head-map] .gtitle"))
            .ToContainTextAsync("Layer 11, head 3 (reads KV head 0)");
        // Four query heads sharing one KV head: one group of four.
        await Assertions.Expect(page.Locator("[data-testid=kv-group-0] .head-thumb")).ToHaveCountAsync(4);
        await Assertions.Expect(page.Locator("[data-testid=kv-group-1]")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("[data-testid=layer-stage]")).ToHaveCountAsync(0); // no split asked for
        // The induction probe scores every head and says which are induction or previous-token heads.
        await page.Locator("[data-testid=run-probe]").ClickAsync();
        await Assertions
            .Expect(page.Locator("[data-testid=probe-summary]"))
            .ToContainTextAsync("Induction probe (2 × 32 random tokens)", new() { Timeout = 60000 });
        await Assertions.Expect(page.Locator("[data-testid=head-map] .gtitle")).ToContainTextAsync("probe: induction");
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task TheShippedMiniShowsItsInductionHead()
    {
        // The app loads the trained minis by default; on a prompt that repeats itself the probe finds an induction
        // head, one click shows it, and its map carries its score.
        var page = await OpenAsync(
            "/attention?model=deepseek-7b-mini&prompt="
                + Uri.EscapeDataString(
                    "Pipeline stages split the layer stack across devices. Pipeline stages split the "
                        + "layer stack across devices."
                )
        );
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions
            .Expect(page.Locator("[data-testid=model-source]"))
            .ToContainTextAsync("weights: trained (defaults/deepseek-7b-mini)", new() { Timeout = 30000 });
        using (var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress })
        {
            var health = await http.GetStringAsync("/api/health");
            foreach (var mini in MiniPresets.All)
                Assert.Contains($"\"source\":\"trained (defaults/{mini.Name})\"", health);
        }
        await page.Locator("[data-testid=run-probe]").ClickAsync();
        await Assertions
            .Expect(page.Locator("[data-testid=probe-summary]"))
            .ToContainTextAsync("Best induction", new() { Timeout = 60000 });
        var summary = await page.Locator("[data-testid=probe-summary]").TextContentAsync() ?? "";
        var best = System.Text.RegularExpressions.Regex.Match(
            summary,
            @"Best induction:\s+layer\s+(\d+)\s+head\s+(\d+)"
        );
        Assert.True(best.Success, summary);
        await page.Locator("[data-testid=show-induction]").ClickAsync();
        // The map switches to that head (the title had probe scores before the click too: wait for the head itself).
        var title = page.Locator("[data-testid=head-map] .gtitle");
        await Assertions
            .Expect(title)
            .ToContainTextAsync(
                new System.Text.RegularExpressions.Regex(
                    $@"Layer\s{best.Groups[1].Value},\s+head\s{best.Groups[2].Value}\s.*probe:\s*induction"
                ),
                new() { Timeout = 30000 }
            );
        var score = System.Text.RegularExpressions.Regex.Match(
            await title.TextContentAsync() ?? "",
            @"probe:\s*induction\s*(\d\.\d\d)"
        );
        Assert.True(
            score.Success
                && double.Parse(score.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 0.5,
            await title.TextContentAsync()
        );
        // The head's thumbnail in the layer's grid is labelled as an induction head.
        await Assertions.Expect(page.Locator("[data-testid=head-grid]")).ToContainTextAsync("induction 0.");
        if (BrowserFixture.ScreenshotFolder is { } folder)
        {
            Directory.CreateDirectory(folder);
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "attention.png") });
        }
        await page.CloseAsync();
    }
}
