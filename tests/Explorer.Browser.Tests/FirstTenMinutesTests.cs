using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

/// <summary>What a newcomer meets: a home page that explains itself, titled axes on every chart, keyboard,
/// themes.</summary>
[Collection(AppCollection.Name)]
public class FirstTenMinutesTests(BrowserFixture fixture)
{
    private async Task<IPage> OpenAsync(string path)
    {
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, path).ToString());
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
        return page;
    }

    /// <summary>
    /// Every chart on the page, once at least <paramref name="atLeast"/> charts have drawn and so has every chart frame
    /// on it (a frame that never draws fails here): both axes titled.
    /// </summary>
    private static async Task AssertAxesTitledAsync(IPage page, string chart, int atLeast)
    {
        try
        {
            await page.WaitForFunctionAsync(
                """
                n => {
                  const frames = [...document.querySelectorAll('.chart-frame')];
                  return document.querySelectorAll('.js-plotly-plot .main-svg').length >= n
                    && frames.every(f => f.querySelector('.js-plotly-plot .main-svg'));
                }
                """,
                atLeast,
                new() { Timeout = 90000 }
            );
        }
        catch (TimeoutException)
        {
            var frames = await page.EvaluateAsync<string[]>(
                """
                () => [...document.querySelectorAll('.chart-frame')].map(f =>
                  (f.getAttribute('data-testid') ?? '?')
                  + (f.querySelector('.js-plotly-plot .main-svg') ? ' drawn' : ' NOT DRAWN'))
                """
            );
            var drawn = await page.EvaluateAsync<int>(
                "() => document.querySelectorAll('.js-plotly-plot .main-svg').length"
            );
            Assert.Fail(
                $"{chart}: {drawn} charts drew within 90 s (at least {atLeast} expected); chart frames: "
                    + $"{string.Join(", ", frames)}"
            );
        }
        var untitled = await page.EvaluateAsync<string[]>(
            """
            () => [...document.querySelectorAll('.js-plotly-plot')]
              .filter(p => p.querySelector('.main-svg'))
              .flatMap(p => {
              const name = p.closest('[data-testid]')?.getAttribute('data-testid') ?? p.id;
              const text = sel => [...p.querySelectorAll(sel)].map(e => e.textContent.trim()).join('');
              const missing = [];
              if (!text('.xtitle')) missing.push(name + ': no x-axis title');
              if (!text('.ytitle')) missing.push(name + ': no y-axis title');
              return missing;
            })
            """
        );
        Assert.True(untitled.Length == 0, $"{chart}: " + string.Join("; ", untitled));
    }

    [BrowserFact]
    public async Task TheHomePageSaysWhatItIsAndEveryChartHasTitledAxes()
    {
        var page = await OpenAsync("/");
        await Assertions.Expect(page.Locator("h1").First).ToContainTextAsync("Two macro designs, side by side");
        await Assertions
            .Expect(page.Locator(".explorer-lede").First)
            .ToContainTextAsync("DeepSeek LLM 7B stacks 30 layers");
        await AssertAxesTitledAsync(page, "architecture", 3);
        await page.CloseAsync();

        page = await OpenAsync("/layers?model=deepseek-7b-mini&prompt=The%20first%20ten%20minutes");
        await AssertAxesTitledAsync(page, "layers", 6);
        await page.CloseAsync();

        page = await OpenAsync("/attention?model=deepseek-67b-mini&prompt=The%20first%20ten%20minutes&layer=3&head=1");
        await AssertAxesTitledAsync(page, "attention", 3);
        await page.CloseAsync();

        page = await OpenAsync("/pipeline");
        await AssertAxesTitledAsync(page, "pipeline", 3);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task SelectorsWorkFromTheKeyboardAndTheThemeSwitches()
    {
        var page = await OpenAsync("/attention?model=deepseek-7b-mini&prompt=Keys%20only&layer=3&head=1");
        await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        // The URL counts layers from 0, the page from 1: layer=3 is "Layer 4"; ArrowUp moves to the next one.
        await Assertions
            .Expect(page.Locator("[data-testid=head-map] .gtitle"))
            .ToContainTextAsync("Layer 4,", new() { Timeout = 30000 });
        var layer = page.Locator("input[data-testid=layer-select], [data-testid=layer-select] input").First;
        await layer.FocusAsync();
        await page.Keyboard.PressAsync("ArrowUp");
        await Assertions
            .Expect(page)
            .ToHaveURLAsync(new System.Text.RegularExpressions.Regex("layer=4"), new() { Timeout = 30000 });
        await Assertions
            .Expect(page.Locator("[data-testid=head-map] .gtitle"))
            .ToContainTextAsync("Layer 5,", new() { Timeout = 30000 });

        // Light by default; the toggle switches to dark and back, and the choice changes the page's colours.
        var background = () => page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");
        var light = await background();
        await page.Locator("[data-testid=theme-toggle]").ClickAsync();
        await page.WaitForFunctionAsync("b => getComputedStyle(document.body).backgroundColor !== b", light);
        await page.Locator("[data-testid=theme-toggle]").ClickAsync();
        await page.WaitForFunctionAsync("b => getComputedStyle(document.body).backgroundColor === b", light);
        await page.CloseAsync();
    }
}
