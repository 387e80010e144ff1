using System.Diagnostics;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Explorer.Browser.Tests;

/// <summary>A measurement, not a test: runs only with EXPLORER_BENCH=1 and reports figures, asserting no times.</summary>
public sealed class BenchmarkFactAttribute : FactAttribute
{
    public BenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH") != "1")
            Skip = "A benchmark: run it with EXPLORER_BENCH=1 dotnet test tests/Explorer.Browser.Tests --filter BrowserBenchmark.";
        else if (!File.Exists(BrowserFactAttribute.ChromiumPath))
            Skip = $"Chromium not found at {BrowserFactAttribute.ChromiumPath}.";
    }
}

public class BrowserBenchmark(BrowserFixture fixture, ITestOutputHelper output) : IClassFixture<BrowserFixture>
{
    private const string Sentence = "The quick brown fox jumps over the lazy dog.";

    [BenchmarkFact]
    public async Task RunToFirstChartAndBytesPerView()
    {
        var lines = await BrowserFiguresAsync();
        foreach (var line in lines)
            output.WriteLine(line);
    }

    /// <summary>
    /// Every figure the project tracks in one report: the live models (time, capture overhead, FLOP utilisation, head
    /// view bytes, memory after many forwards) and the planner from <c>explorer bench --suite all</c>, then the
    /// browser (run → first chart, bytes per view), with the machine it ran on. Written to EXPLORER_BENCH_OUT too.
    /// </summary>
    [BenchmarkFact]
    public async Task EveryFigure()
    {
        var report = new List<string> { "## Benchmarks", "", Machine(), "" };
        // The server of this class starts with it: let it finish loading its models before timing anything here.
        using (var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress })
            for (var i = 0; i < 240 && (await http.GetStringAsync("/api/health")).Contains("\"Loading\""); i++)
                await Task.Delay(250);
        await Task.Delay(2000);
        using (var cliOut = new StringWriter())
        using (var cliErr = new StringWriter())
        {
            var code = Explorer.Cli.ExplorerCommand.Run(["bench", "--suite", "all"], cliOut, cliErr);
            Assert.True(code == 0, cliErr.ToString());
            report.AddRange(["### Live models and planner (`explorer bench --suite all`)", "", "```", .. cliOut.ToString().TrimEnd().Split('\n'), "```", ""]);
        }
        report.AddRange(["### Browser (headless Chromium over loopback, 128-token prompts)", "", .. await BrowserFiguresAsync()]);
        foreach (var line in report)
            output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH_OUT") is { Length: > 0 } file)
            await File.WriteAllLinesAsync(file, report);
    }

    private static string Machine()
    {
        static string? Field(string file, string key) => File.Exists(file)
            ? File.ReadLines(file).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var memory = Field("/proc/meminfo", "MemTotal") is { } kb ? $"{long.Parse(kb.Split(' ')[0]) / 1048576.0:0} GiB" : "?";
        return $"Machine: {Field("/proc/cpuinfo", "model name") ?? "unknown CPU"}, {Environment.ProcessorCount} cores, {memory} memory, " +
               $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}; {DateTime.UtcNow:yyyy-MM-dd}.";
    }

    private async Task<List<string>> BrowserFiguresAsync()
    {
        var lines = new List<string> { "| model | run → first chart (median of 5, ms) | layer summary view | head map view | head grid + map view |", "|---|---|---|---|---|" };
        foreach (var model in new[] { "deepseek-7b-mini", "deepseek-67b-mini" })
        {
            var page = await fixture.Browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1600, Height = 1300 } });
            long received = 0;
            page.WebSocket += (_, ws) => ws.FrameReceived += (_, frame) =>
                Interlocked.Add(ref received, frame.Binary?.Length ?? System.Text.Encoding.UTF8.GetByteCount(frame.Text ?? ""));
            await page.GotoAsync(new Uri(fixture.Server.BaseAddress, $"/layers?model={model}").ToString());
            await Assertions.Expect(page.Locator("[data-testid=model-status]")).ToContainTextAsync("2 live models", new() { Timeout = 60000 });
            await page.Locator("[data-testid=app-interactive]").WaitForAsync(new() { State = WaitForSelectorState.Attached });
            var box = page.Locator("[data-testid=prompt-text] input, input[data-testid=prompt-text]").First;
            var times = new List<double>();
            long summaryBytes = 0;
            for (var run = 0; run < 6; run++)
            {
                // About 128 tokens (8 × 16), a different prompt each time so nothing comes from the cache.
                await box.FillAsync($"Run {run}. " + string.Join(' ', Enumerable.Repeat(Sentence, 8)));
                var chart = page.Locator("[data-testid=residual-norm] .main-svg").First;
                var before = await chart.CountAsync() > 0 ? await chart.InnerHTMLAsync() : "";
                Interlocked.Exchange(ref received, 0);
                var watch = Stopwatch.StartNew();
                await page.Locator("[data-testid=prompt-run]").ClickAsync();
                await page.WaitForFunctionAsync("b => { const s = document.querySelector('[data-testid=residual-norm] .main-svg'); return s && s.innerHTML !== b; }", before, new() { Timeout = 120000 });
                var elapsed = watch.Elapsed.TotalMilliseconds;
                await page.WaitForTimeoutAsync(1500); // let the other charts arrive before counting bytes
                if (run > 0) times.Add(elapsed); // the first run warms the page
                summaryBytes = Interlocked.Read(ref received);
            }
            times.Sort();

            await page.GotoAsync(new Uri(fixture.Server.BaseAddress, $"/attention?model={model}&prompt={Uri.EscapeDataString("Run 5. " + string.Join(' ', Enumerable.Repeat(Sentence, 8)))}&layer=3&head=0").ToString());
            await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
            await page.WaitForTimeoutAsync(1500);
            Interlocked.Exchange(ref received, 0);
            await page.Locator("[data-testid=head-thumb-1]").ClickAsync();
            await page.WaitForTimeoutAsync(1500);
            var headBytes = Interlocked.Read(ref received);
            Interlocked.Exchange(ref received, 0);
            var layerBox = page.Locator("input[data-testid=layer-select], [data-testid=layer-select] input").First;
            await layerBox.FillAsync("5");
            await layerBox.PressAsync("Tab");
            await page.WaitForTimeoutAsync(1500);
            var gridBytes = Interlocked.Read(ref received);
            lines.Add($"| {model} | {times[times.Count / 2]:0} | {summaryBytes / 1024.0:0.0} KB | {headBytes / 1024.0:0.0} KB | {gridBytes / 1024.0:0.0} KB |");
            await page.CloseAsync();
        }
        return lines;
    }
}
