using System.Diagnostics;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Explorer.Browser.Tests;

/// <summary>A measurement, not a test: runs only with EXPLORER_BENCH=1 and reports figures, asserting no
/// times.</summary>
public sealed class BenchmarkFactAttribute : FactAttribute
{
    public BenchmarkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH") != "1")
            Skip =
                "A benchmark: run it with EXPLORER_BENCH=1 dotnet test tests/Explorer.Browser.Tests "
                + "--filter BrowserBenchmark.";
        else if (!File.Exists(BrowserFactAttribute.ChromiumPath))
            Skip = $"Chromium not found at {BrowserFactAttribute.ChromiumPath}.";
    }
}

[Collection(AppCollection.Name)]
public class BrowserBenchmark(BrowserFixture fixture, ITestOutputHelper output)
{
    private const string Sentence = "The quick brown fox jumps over the lazy dog.";

    /// <summary>
    /// Every figure the project tracks in one report: the live models (time, capture overhead, FLOP utilisation, head
    /// view bytes, memory after many forwards) and the planner from <c>explorer bench --suite all</c>, then the
    /// browser (run → first chart, bytes per view), with the machine it ran on. Written to EXPLORER_BENCH_OUT too.
    /// </summary>
    [BenchmarkFact]
    public async Task EveryFigure()
    {
        var report = new List<string> { "## Benchmarks", "", Machine(), "" };
        // The shared server may still be loading its models or warming them up on its worker: let it go idle before
        // timing anything here (the in-process bench shares the cores with it).
        using (var http = new HttpClient { BaseAddress = fixture.Server.BaseAddress })
            for (var i = 0; i < 480; i++)
            {
                using var health = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/health"));
                var models = health.RootElement.GetProperty("models").EnumerateArray().ToArray();
                if (
                    health.RootElement.GetProperty("waiting").GetInt32() == 0
                    && models.All(m => m.GetProperty("state").GetString() != "Loading")
                )
                    break;
                await Task.Delay(250);
            }
        using (var cliOut = new StringWriter())
        using (var cliErr = new StringWriter())
        {
            var code = Explorer.Cli.ExplorerCommand.Run(["bench", "--suite", "all"], cliOut, cliErr);
            Assert.True(code == 0, cliErr.ToString());
            report.AddRange([
                "### Live models and planner (`explorer bench --suite all`)",
                "",
                "```",
                .. cliOut.ToString().TrimEnd().Split('\n'),
                "```",
                "",
            ]);
        }
        report.AddRange([
            "### Browser (headless Chromium over loopback, 128-token prompts)",
            "",
            .. await BrowserFiguresAsync(),
        ]);
        foreach (var line in report)
            output.WriteLine(line);
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH_OUT") is { Length: > 0 } file)
            await WriteReportAsync(file, report.Skip(2).ToList());
    }

    private const string ReportBegin =
        "<!-- benchmark report: written by the EveryFigure benchmark, do not edit by hand -->";
    private const string ReportEnd = "<!-- end of benchmark report -->";

    /// <summary>
    /// Writes the report to <paramref name="file"/>: between the report markers where the file has them
    /// (docs/benchmarks.md's "Latest report"), the whole file otherwise.
    /// </summary>
    private static async Task WriteReportAsync(string file, List<string> report)
    {
        var text = File.Exists(file) ? await File.ReadAllTextAsync(file) : "";
        int begin = text.IndexOf(ReportBegin, StringComparison.Ordinal),
            end = text.IndexOf(ReportEnd, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            await File.WriteAllLinesAsync(file, report);
            return;
        }
        var body = string.Join('\n', report);
        await File.WriteAllTextAsync(file, text[..(begin + ReportBegin.Length)] + "\n\n" + body + "\n\n" + text[end..]);
    }

    private static string Machine()
    {
        static string? Field(string file, string key) =>
            File.Exists(file)
                ? File.ReadLines(file)
                    .FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal))
                    ?.Split(':', 2)[1]
                    .Trim()
                : null;
        var memory = Field("/proc/meminfo", "MemTotal") is { } kb
            ? $"{long.Parse(kb.Split(' ')[0]) / 1048576.0:0} GiB"
            : "?";
        return $"Machine: {Field("/proc/cpuinfo", "model name") ?? "unknown CPU"}, "
            + $"{Environment.ProcessorCount} cores, {memory} memory, "
            + $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET "
            + $"{Environment.Version}; {DateTime.UtcNow:yyyy-MM-dd}.";
    }

    private async Task<List<string>> BrowserFiguresAsync()
    {
        var lines = new List<string>
        {
            "| model | run → first chart (median of 5, ms) | layer summary view | head map view | head "
                + "grid + map view |",
            "|---|---|---|---|---|",
        };
        foreach (var model in new[] { "deepseek-7b-mini", "deepseek-67b-mini" })
        {
            var page = await fixture.Browser.NewPageAsync(
                new BrowserNewPageOptions
                {
                    ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
                }
            );
            long received = 0,
                lastFrame = 0;
            page.WebSocket += (_, ws) =>
                ws.FrameReceived += (_, frame) =>
                {
                    Interlocked.Add(
                        ref received,
                        frame.Binary?.Length ?? System.Text.Encoding.UTF8.GetByteCount(frame.Text ?? "")
                    );
                    Interlocked.Exchange(ref lastFrame, Stopwatch.GetTimestamp());
                };
            // The server has sent what a change causes once a frame has come after the change and the connection has
            // then been quiet for half a second.
            async Task QuietAsync(long changedAt)
            {
                var deadline = Stopwatch.StartNew();
                while (Interlocked.Read(ref lastFrame) < changedAt)
                {
                    Assert.True(
                        deadline.Elapsed < TimeSpan.FromSeconds(60),
                        $"{model}: the server sent nothing within 60 s of a change"
                    );
                    await Task.Delay(50);
                }
                while (Stopwatch.GetElapsedTime(Interlocked.Read(ref lastFrame)) < TimeSpan.FromMilliseconds(500))
                    await Task.Delay(100);
            }
            await page.GotoAsync(new Uri(fixture.Server.BaseAddress, $"/layers?model={model}").ToString());
            await Assertions
                .Expect(page.Locator("[data-testid=model-status]"))
                .ToContainTextAsync("2 live models", new() { Timeout = 60000 });
            await page.Locator("[data-testid=app-interactive]")
                .WaitForAsync(new() { State = WaitForSelectorState.Attached });
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
                var ran = Stopwatch.GetTimestamp();
                await page.Locator("[data-testid=prompt-run]").ClickAsync();
                await page.WaitForFunctionAsync(
                    "b => { const s = document.querySelector('[data-testid=residual-norm] .main-svg'); "
                        + "return s && s.innerHTML !== b; }",
                    before,
                    new() { Timeout = 120000 }
                );
                var elapsed = watch.Elapsed.TotalMilliseconds;
                await QuietAsync(ran); // the other charts arrive before the bytes are counted
                if (run > 0)
                    times.Add(elapsed); // the first run warms the page
                summaryBytes = Interlocked.Read(ref received);
            }
            times.Sort();

            var prompt = Uri.EscapeDataString("Run 5. " + string.Join(' ', Enumerable.Repeat(Sentence, 8)));
            var opened = Stopwatch.GetTimestamp();
            await page.GotoAsync(
                new Uri(
                    fixture.Server.BaseAddress,
                    $"/attention?model={model}&prompt={prompt}&layer=3&head=0"
                ).ToString()
            );
            await page.Locator("[data-testid=head-map] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
            await QuietAsync(opened);
            Interlocked.Exchange(ref received, 0);
            var clicked = Stopwatch.GetTimestamp();
            await page.Locator("[data-testid=head-thumb-1]").ClickAsync();
            await QuietAsync(clicked);
            var headBytes = Interlocked.Read(ref received);
            Interlocked.Exchange(ref received, 0);
            var layerBox = page.Locator("input[data-testid=layer-select], [data-testid=layer-select] input").First;
            await layerBox.FillAsync("5");
            var changed = Stopwatch.GetTimestamp();
            await layerBox.PressAsync("Tab");
            await QuietAsync(changed);
            var gridBytes = Interlocked.Read(ref received);
            // Each view sent something, and a head click sends one map where a layer change sends the grid and a map.
            Assert.True(
                summaryBytes > 0 && headBytes > 0,
                $"{model}: no bytes counted for a view ({summaryBytes}, {headBytes})"
            );
            Assert.True(
                gridBytes > headBytes,
                $"{model}: a layer change sent {gridBytes} bytes, a head click {headBytes}"
            );
            lines.Add(
                $"| {model} | {times[times.Count / 2]:0} | {summaryBytes / 1024.0:0.0} KB | "
                    + $"{headBytes / 1024.0:0.0} KB | {gridBytes / 1024.0:0.0} KB |"
            );
            await page.CloseAsync();
        }
        return lines;
    }
}
