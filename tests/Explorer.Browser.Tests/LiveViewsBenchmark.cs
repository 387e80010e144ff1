using System.Globalization;
using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Microsoft.Playwright;
using TorchSharp;
using Xunit.Abstractions;

namespace Explorer.Browser.Tests;

/// <summary>
/// What a user waits for on the live views, stage by stage, against the fused forward measured in the same run: a
/// shared link to the Layers page, Run on a loaded page, the Attention page from a link and compare mode. The minis
/// always (EXPLORER_BENCH_MINIS=0 leaves them out); a full-size checkpoint (one <c>explorer make-checkpoint</c>
/// wrote) when EXPLORER_BENCH_CHECKPOINT names its folder. Stages come from the server's marks (the prompt bar's
/// timing line) and the page's own clock (a mutation observer on the charts), which share this machine's clock. A
/// measurement: it asserts no times.
/// </summary>
[Collection(AppCollection.Name)]
public class LiveViewsBenchmark(BrowserFixture fixture, ITestOutputHelper output)
{
    /// <summary>Which chart each flow waits for: the first depth chart, every depth chart, and the
    /// page's first result on the Attention page.</summary>
    private static readonly string[] DepthCharts =
    [
        "residual-norm",
        "growth",
        "block-influence",
        "contributions",
        "relative-update",
        "token-layer-0",
    ];

    /// <summary>
    /// Records, in the page, when each chart (a chart frame with a data-testid, once Plotly has drawn into it) first
    /// changed since the last reset, when any chart last changed, and when the circuit went live.
    /// </summary>
    private const string Observer = """
        window.__bench = { first: {}, last: 0, lastId: '', interactive: 0 };
        window.__benchReset = () => {
            window.__bench.first = {}; window.__bench.last = 0; window.__bench.lastId = ''; return Date.now();
        };
        new MutationObserver(records => {
            const now = Date.now();
            for (const r of records) {
                const target = r.target.nodeType === 1 ? r.target : r.target.parentElement;
                const frame = target && target.closest && target.closest('.chart-frame');
                // A chart counts once Plotly has drawn into its frame (its svg), not when the page inserts the frame.
                if (frame && frame.querySelector('.main-svg')) {
                    const id = frame.getAttribute('data-testid');
                    if (id && !(id in window.__bench.first)) window.__bench.first[id] = now;
                    window.__bench.last = now;
                    window.__bench.lastId = id || '';
                }
            }
            if (!window.__bench.interactive && document.querySelector('[data-testid=app-interactive]'))
                window.__bench.interactive = now;
        }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
        """;

    /// <summary>A prompt of 24–32 tokens under a byte-level tokenizer without merges (make-checkpoint's), unique so
    /// that no cached trace answers it: a flow's letter and four digits, then the sentence.</summary>
    private static string Prompt(char flow) => $"{flow}{Random.Shared.Next(1000, 10000)} the quick brown fox jumps";

    [BenchmarkFact]
    public async Task FromALinkOrARunToTheCharts()
    {
        var report = new List<string>
        {
            "| model | flow | tokens | fused forward | browser: html, scripts run, plotly.js ready | page live | "
                + "server: tokenise, wait, forward | forward done → first chart | first chart | depth charts | lens | "
                + "settled | ÷ fused | target |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        };
        await WaitIdleAsync(fixture.Server);
        var profile = Directory.CreateTempSubdirectory("explorer-bench-profile-");
        try
        {
            await using var context = await fixture.LaunchProfileAsync(
                profile.FullName,
                new ViewportSize { Width = 1600, Height = 1300 }
            );
            await context.AddInitScriptAsync(Observer);
            _context = context;
            await MeasureAllAsync(report);
        }
        finally
        {
            profile.Delete(recursive: true);
        }
        foreach (var line in report)
            output.WriteLine(line);
    }

    private async Task MeasureAllAsync(List<string> report)
    {
        await MeasureFirstVisitAsync(report);
        await WarmUpAsync(fixture.Server);
        // EXPLORER_BENCH_MINIS=0 measures the checkpoint alone.
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH_MINIS") != "0")
        {
            foreach (var model in new[] { MiniPresets.DeepSeek7BMini, MiniPresets.DeepSeek67BMini })
            {
                using var live = LiveModel.Mini(model);
                await MeasureAsync(fixture.Server, model.Name, n => FusedMs(live, n), report, miniTarget: true);
            }
            await MeasureCompareAsync(report);
            await MeasureInterventionsAsync(report);
        }
        if (Environment.GetEnvironmentVariable("EXPLORER_BENCH_CHECKPOINT") is { Length: > 0 } folder)
        {
            await MeasureCheckpointAsync(folder, report);
            // EXPLORER_BENCH_STREAM=1 measures the checkpoint streamed too.
            if (Environment.GetEnvironmentVariable("EXPLORER_BENCH_STREAM") == "1")
                await MeasureStreamedAsync(folder, report);
        }
    }

    /// <summary>
    /// A shared link opened by someone who has never opened Explorer: a fresh browser profile, so every script
    /// (plotly.js is 1.4 MB) is fetched and compiled for the first time. The other rows are measured in one profile,
    /// on disk, that has opened Explorer before, as a returning user's browser has.
    /// </summary>
    private async Task MeasureFirstVisitAsync(List<string> report)
    {
        await using var context = await fixture.Browser.NewContextAsync(
            new BrowserNewContextOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        await context.AddInitScriptAsync(Observer);
        var page = await context.NewPageAsync();
        var model = MiniPresets.DeepSeek67BMini;
        using var live = LiveModel.Mini(model);
        var prompt = Uri.EscapeDataString(Prompt('F'));
        var flow = await FollowAsync(
            page,
            () => page.GotoAsync(Url(fixture.Server, $"/layers?model={model.Name}&prompt={prompt}")),
            lens: true
        );
        Report(
            report,
            Row(model.Name, "link → Layers, first visit (fresh profile)", flow, FusedMs(live, flow.Tokens), true)
        );
    }

    /// <summary>Opens the home page (which draws charts) twice in the shared profile, so that its scripts are cached
    /// and compiled as in a browser that has opened Explorer before (Chromium keeps a script's compiled code from its
    /// second run on).</summary>
    private async Task WarmUpAsync(AppServer server)
    {
        for (var i = 0; i < 2; i++)
        {
            var page = await NewPageAsync(server, "/");
            await page.Locator(".chart-frame .main-svg").First.WaitForAsync(new() { Timeout = 60000 });
            await page.CloseAsync();
        }
    }

    /// <summary>
    /// A server of the checkpoint alone, loaded by the Models page's button (<paramref name="button"/>: load or
    /// stream), its scripts cached in this profile (another origin caches apart) and used once.
    /// </summary>
    private async Task<AppServer> ServeAsync(DirectoryInfo directory, string button)
    {
        var server = await AppServer.StartAsync(
            new Dictionary<string, string>
            {
                ["Models__ModelsFolder"] = directory.Parent!.FullName,
                ["Models__LoadDefaultModels"] = "false",
            }
        );
        try
        {
            var page = await NewPageAsync(server, "/models");
            await page.Locator("[data-testid=app-interactive]")
                .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
            await page.Locator($"[data-testid='{button}-{directory.Name}']").ClickAsync(new() { Timeout = 60000 });
            await WaitIdleAsync(server, readyModel: directory.Name);
            await page.CloseAsync();
            await WarmUpAsync(server);
            await UseOnceAsync(server, directory.Name);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One Layers link with its own prompt on <paramref name="model"/>, as a server that has been used has drawn it:
    /// the first forward after a load and the page's first render in a fresh server process (its code compiled on
    /// first use) are a cold start, which the flows after it do not see again. Not measured.
    /// </summary>
    private async Task UseOnceAsync(AppServer server, string model)
    {
        var page = await NewPageAsync(server, $"/layers?model={model}&prompt={Uri.EscapeDataString(Prompt('W'))}");
        await page.Locator("[data-testid=relative-update] .main-svg").First.WaitForAsync(new() { Timeout = 300000 });
        await page.CloseAsync();
        await WaitIdleAsync(server);
    }

    /// <summary>Adds a row, and says it at once (a later flow that fails leaves the rows measured before
    /// it).</summary>
    private void Report(List<string> report, string row)
    {
        report.Add(row);
        Console.WriteLine(row);
    }

    private async Task MeasureCheckpointAsync(string folder, List<string> report)
    {
        var directory = new DirectoryInfo(Path.TrimEndingDirectorySeparator(folder));
        Assert.True(directory.Exists, $"EXPLORER_BENCH_CHECKPOINT {folder}: no such folder.");
        // The fused forward of the flows' length, timed in this process before the server loads the same weights: two
        // copies of a 13.8 GB checkpoint do not fit this machine's memory together, and the one timed would be read
        // back from the disk as the other pushed it out. Every flow's prompt has the same length.
        int tokens;
        double fused;
        using (var live = LiveModel.FromCheckpoint(directory.FullName, "cpu"))
        {
            tokens = live.Encode(Prompt('L'), 4096).Length;
            fused = FusedMs(live, tokens);
            // The forward the Layers page runs (its default view), and the lens at the last position it reads after,
            // here, against the server's in the flows.
            var view = TimedMs(live, tokens, ids => live.Decoder.Trace(ids, TraceOptions.ForViews(tokens, false)));
            var lastLens = TimedMs(live, tokens, ids =>
            {
                var trace = live.Decoder.Trace(ids, TraceOptions.ForViews(tokens, false));
                trace.ReadLastLens(live.Decoder);
                return trace;
            });
            output.WriteLine(
                $"{directory.Name}, {tokens} tokens, in the benchmark's process: fused forward {fused:0} ms, the "
                    + $"Layers view's traced forward {view:0} ms ({view / fused:0.00}×), with the lens at the last "
                    + $"position after it {lastLens:0} ms"
            );
        }
        ProcessMemory.Trim(); // the freed weights go back to the system before the server loads its own
        await using var server = await ServeAsync(directory, "load");
        await Task.Delay(TimeSpan.FromSeconds(15)); // loaded and idle, as a user finds it after a while
        await MeasureAsync(
            server,
            directory.Name,
            n => n == tokens ? fused : throw new InvalidOperationException($"{n} tokens, fused timed at {tokens}"),
            report,
            miniTarget: false
        );
    }

    /// <summary>
    /// Run on the Interventions page with its defaults (every sweep on the 7B mini, layer removal on both minis): the
    /// server's compute, step by step on the worker (the page's timing line), against the browser's first sweep chart
    /// and every chart settled. Its target, as the views': settled within 1.5 × the compute + 1 s.
    /// </summary>
    private async Task MeasureInterventionsAsync(List<string> report)
    {
        var page = await NewPageAsync(fixture.Server, "/interventions");
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
        var began = await page.EvaluateAsync<long>("window.__benchReset()");
        await page.Locator("[data-testid=iv-run]").ClickAsync();
        var timings = page.Locator("[data-testid=iv-timings]");
        await timings.WaitForAsync(new() { Timeout = 300000 });
        await page.WaitForFunctionAsync(
            "() => 'iv-residual' in window.__bench.first && Date.now() - window.__bench.last > 1000",
            null,
            new() { Timeout = 60000, PollingInterval = 250 }
        );
        var marks = await page.EvaluateAsync<JsonElement>("window.__bench");
        var server = await timings.EvaluateAsync<Dictionary<string, string>>("e => ({ ...e.dataset })");
        double Since(long at) => at - began;
        var compute = double.Parse(server["computeMs"], CultureInfo.InvariantCulture);
        var firstResult = Since(long.Parse(server["firstResult"], CultureInfo.InvariantCulture));
        var done = Since(long.Parse(server["done"], CultureInfo.InvariantCulture));
        // The first sweep's chart (the residual patching map) is the page's first result.
        var first = Since(marks.GetProperty("first").GetProperty("iv-residual").GetInt64());
        var settled = Since(marks.GetProperty("last").GetInt64());
        var target = 1.5 * compute + 1000;
        Report(
            report,
            $"| deepseek-7b-mini (+ 67b-mini removal) | Run → Interventions: compute {compute:0} ms, first sweep "
                + $"ready {firstResult:0} ms, all {done:0} ms | — | {compute:0} ms (compute) | — | — | — | "
                + $"{first - firstResult:0} ms | {first:0} ms | — | — | "
                + $"{settled:0} ms ({marks.GetProperty("lastId")}) | "
                + $"{settled / compute:0.00}× | {(settled <= target ? "met" : "missed")} (settled ≤ {target:0} ms) |"
        );
        await page.CloseAsync();
    }

    /// <summary>
    /// The checkpoint streamed (layer by layer from its files, as the Models page's Stream button loads it): a link
    /// and a Run on the Layers page against the streamed forward of the same length, timed in this process first with
    /// the files in the page cache as the server then finds them. Target: first charts within 1.2 × that + 1 s.
    /// </summary>
    private async Task MeasureStreamedAsync(string folder, List<string> report)
    {
        var directory = new DirectoryInfo(Path.TrimEndingDirectorySeparator(folder));
        int tokens;
        double streamed;
        using (var live = LiveModel.FromCheckpoint(directory.FullName, "cpu", streamed: true))
        {
            tokens = live.Encode(Prompt('S'), 4096).Length;
            streamed = FusedMs(live, tokens);
        }
        await using var server = await ServeAsync(directory, "stream");
        var page = await NewPageAsync(server, null);
        var prompt = Uri.EscapeDataString(Prompt('S'));
        var link = await FollowAsync(
            page,
            () => page.GotoAsync(Url(server, $"/layers?model={directory.Name}&prompt={prompt}")),
            lens: true
        );
        Report(report, Row(directory.Name, "streamed: link → Layers", link, streamed, false, firstChartFactor: 1.2));
        var box = page.Locator("[data-testid=prompt-text] input, input[data-testid=prompt-text]").First;
        await box.FillAsync(Prompt('T'));
        var run = await FollowAsync(page, () => page.Locator("[data-testid=prompt-run]").ClickAsync(), lens: true);
        Report(report, Row(directory.Name, "streamed: Run → Layers", run, streamed, false, firstChartFactor: 1.2));
        await page.CloseAsync();
    }

    private async Task MeasureCompareAsync(List<string> report)
    {
        using var first = LiveModel.Mini(MiniPresets.DeepSeek7BMini);
        using var second = LiveModel.Mini(MiniPresets.DeepSeek67BMini);
        var models = $"{first.Name} + {second.Name}";
        var page = await NewPageAsync(fixture.Server, null);
        var prompt = Prompt('C');
        var link = $"/layers?model={first.Name}&compare={second.Name}&prompt={Uri.EscapeDataString(prompt)}";
        var flow = await FollowAsync(page, () => page.GotoAsync(Url(fixture.Server, link)), lens: true);
        var fused = FusedMs(first, flow.Tokens) + FusedMs(second, flow.Tokens);
        Report(report, Row(models, "compare link → Layers", flow, fused, miniTarget: true));
        await page.CloseAsync();
    }

    private async Task MeasureAsync(
        AppServer server,
        string model,
        Func<int, double> fusedMs,
        List<string> report,
        bool miniTarget
    )
    {
        var page = await NewPageAsync(server, null);
        var prompt = Uri.EscapeDataString(Prompt('L'));
        var link = await FollowAsync(
            page,
            () => page.GotoAsync(Url(server, $"/layers?model={model}&prompt={prompt}")),
            lens: true
        );
        var fused = fusedMs(link.Tokens);
        Report(report, Row(model, "link → Layers", link, fused, miniTarget));

        var box = page.Locator("[data-testid=prompt-text] input, input[data-testid=prompt-text]").First;
        await box.FillAsync(Prompt('R'));
        var run = await FollowAsync(page, () => page.Locator("[data-testid=prompt-run]").ClickAsync(), lens: true);
        Report(report, Row(model, "Run → Layers", run, fused, miniTarget));

        var attention = Uri.EscapeDataString(Prompt('A'));
        var heads = await FollowAsync(
            page,
            () => page.GotoAsync(Url(server, $"/attention?model={model}&prompt={attention}&layer=3&head=0")),
            lens: false,
            first: ["head-map"]
        );
        Report(report, Row(model, "link → Attention", heads, fused, miniTarget));

        // The same link's forward run by the server alone (a plain GET prerenders it, no browser drawing), then the
        // page opened once it is done: the server's forward without the browser beside it, and the page's own cost.
        var ahead = Uri.EscapeDataString(Prompt('P'));
        var path = $"/layers?model={model}&prompt={ahead}";
        using (var http = new HttpClient { BaseAddress = server.BaseAddress })
        {
            var before = await ForwardsAsync(http);
            (await http.GetAsync(path)).EnsureSuccessStatusCode();
            await WaitIdleAsync(server, forwardsAbove: before);
        }
        var served = await FollowAsync(page, () => page.GotoAsync(Url(server, path)), lens: true);
        Report(report, Row(model, "link → Layers, forward done before (no browser)", served, fused, miniTarget));
        await page.CloseAsync();
    }

    /// <summary>One flow's stages, in milliseconds from its start (the navigation or the click).</summary>
    private sealed record Flow(
        int Tokens,
        double? Live,
        double Tokenize,
        double Waited,
        double Forward,
        double Traced,
        double FirstChart,
        double DepthCharts,
        double? Lens,
        double Settled,
        string LastChart,
        string Browser,
        double? LensOnRequest = null
    );

    private async Task<Flow> FollowAsync(IPage page, Func<Task> start, bool lens, string[]? first = null)
    {
        var watched = first ?? DepthCharts;
        var previous =
            await page.Locator("[data-testid=run-timings]").CountAsync() > 0
                ? await page.Locator("[data-testid=run-timings]").GetAttributeAsync("data-requested")
                : null;
        // A navigation starts a new document (a fresh observer); a click keeps it, so its marks are reset first.
        var began =
            previous is null || first is not null
                ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()
                : await page.EvaluateAsync<long>("window.__benchReset()");
        await start();
        // The run this flow started has ended when the timing line names another request; with the lens, once the
        // lens is done too. Every time comes from the marks, not from noticing: the polls are sparse, so that the
        // benchmark's own checks take little of the cores the page and the server share.
        var timings = page.Locator("[data-testid=run-timings]");
        await page.WaitForFunctionAsync(
            """
            ([previous, lens]) => {
                const t = document.querySelector('[data-testid=run-timings]');
                return t && t.getAttribute('data-requested') !== previous
                    && (!lens || t.hasAttribute('data-lens-done') || t.hasAttribute('data-lens-on-request'));
            }
            """,
            new object?[] { previous, lens },
            new() { Timeout = 300000, PollingInterval = 250 }
        );
        await page.WaitForFunctionAsync(
            "ids => ids.every(id => id in window.__bench.first)",
            watched,
            new() { Timeout = 60000, PollingInterval = 250 }
        );
        // Settled: no chart has changed for a second.
        await page.WaitForFunctionAsync(
            "() => Date.now() - window.__bench.last > 1000",
            null,
            new() { Timeout = 60000, PollingInterval = 250 }
        );
        var marks = await page.EvaluateAsync<JsonElement>("window.__bench");
        var server = await timings.EvaluateAsync<Dictionary<string, string>>("e => ({ ...e.dataset })");
        var browser = await page.EvaluateAsync<JsonElement>(
            """
            () => {
                const at = t => t ? Math.round(performance.timeOrigin + t) : 0;
                const nav = performance.getEntriesByType('navigation')[0];
                const plotly = performance.getEntriesByName('explorer:plotly-loaded')[0];
                return { html: at(nav && nav.responseEnd), dom: at(nav && nav.domContentLoadedEventEnd),
                         plotly: at(plotly && plotly.startTime) };
            }
            """
        );
        // A lens too long to run unasked waits for its button: every chart but it has settled. Then it is asked for,
        // and timed from the click to its heatmap settling.
        double? onRequest = null;
        if (lens && server.ContainsKey("lensOnRequest"))
        {
            var asked = await page.EvaluateAsync<long>("window.__benchReset()");
            await page.Locator("[data-testid=lens-every-position]").First.ClickAsync();
            await page.WaitForFunctionAsync(
                "() => document.querySelector('[data-testid=run-timings]')?.hasAttribute('data-lens-done')",
                null,
                new() { Timeout = 300000, PollingInterval = 250 }
            );
            await page.WaitForFunctionAsync(
                "() => window.__bench.last > 0 && Date.now() - window.__bench.last > 1000",
                null,
                new() { Timeout = 60000, PollingInterval = 250 }
            );
            onRequest = await page.EvaluateAsync<long>("window.__bench.last") - asked;
        }
        double Since(long at) => at - began;
        double Ms(string key) => double.Parse(server[key], CultureInfo.InvariantCulture);
        var firsts = watched.Select(id => marks.GetProperty("first").GetProperty(id).GetInt64()).ToArray();
        var live = marks.GetProperty("interactive").GetInt64();
        // A navigation's stages in the browser: its html received, its scripts run (DOMContentLoaded), plotly.js
        // loaded; a click has none.
        var stages = new[] { "html", "dom", "plotly" }
            .Select(name => browser.GetProperty(name).GetInt64())
            .Select(at => at >= began ? $"{Since(at):0}" : "—")
            .ToArray();
        return new Flow(
            await page.Locator("[data-testid=token-chips] .token-chip").CountAsync(),
            live >= began ? Since(live) : null,
            Ms("tokenizeMs"),
            Ms("waitedMs"),
            Ms("forwardMs"),
            Since(long.Parse(server["traced"], CultureInfo.InvariantCulture)),
            Since(firsts.Min()),
            Since(firsts.Max()),
            lens && onRequest is null ? Ms("lensMs") : null,
            Since(marks.GetProperty("last").GetInt64()),
            marks.GetProperty("lastId").GetString() ?? "",
            stages.All(stage => stage == "—") ? "—" : string.Join(", ", stages) + " ms",
            onRequest
        );
    }

    /// <summary>
    /// A table row, with the issue's target for the flow: a Run is held to every chart settled within 2.5 × the fused
    /// forward + 0.5 s, a link to its first charts within 1.5 × + 1 s; a mini to 1 s either way.
    /// </summary>
    private static string Row(
        string model,
        string flow,
        Flow f,
        double fused,
        bool miniTarget,
        double? firstChartFactor = null
    )
    {
        // A streamed model's target is its first charts, whether from a link or a Run.
        var run = flow.StartsWith("Run", StringComparison.Ordinal) && firstChartFactor is null;
        var (measured, target, what) = run
            ? (f.Settled, miniTarget ? 1000 : 2.5 * fused + 500, "settled")
            : (f.FirstChart, miniTarget ? 1000 : (firstChartFactor ?? 1.5) * fused + 1000, "first chart");
        var lens =
            f.Lens is { } l ? $"{l:0} ms"
            : f.LensOnRequest is { } asked ? $"on request: {asked:0} ms from the click"
            : "—";
        return $"| {model} | {flow} | {f.Tokens} | {fused:0} ms | {f.Browser} | "
            + $"{(f.Live is { } live ? $"{live:0} ms" : "—")} | "
            + $"{f.Tokenize:0}, {f.Waited:0}, {f.Forward:0} ms | "
            + $"{f.FirstChart - f.Traced:0} ms | {f.FirstChart:0} ms | {f.DepthCharts:0} ms | {lens} | "
            + $"{f.Settled:0} ms ({f.LastChart}) | {measured / fused:0.00}× | "
            + $"{(measured <= target ? "met" : "missed")} ({what} ≤ {target:0} ms) |";
    }

    private static double FusedMs(LiveModel live, int tokens) => TimedMs(live, tokens, ids => live.Decoder.Logits(ids));

    /// <summary>The median of five runs of <paramref name="forward"/> on random tokens, after one
    /// warm-up.</summary>
    private static double TimedMs(LiveModel live, int tokens, Func<torch.Tensor, IDisposable> forward)
    {
        using var generator = new torch.Generator(99, torch.CPU);
        using var ids = torch.randint(
            0,
            live.Spec.VocabularySize,
            [1, tokens],
            generator: generator,
            dtype: torch.ScalarType.Int64
        );
        forward(ids).Dispose(); // warm-up
        var times = Enumerable
            .Range(0, 5)
            .Select(_ =>
            {
                var watch = System.Diagnostics.Stopwatch.StartNew();
                forward(ids).Dispose();
                return watch.Elapsed.TotalMilliseconds;
            })
            .Order()
            .ToArray();
        return times[times.Length / 2];
    }

    private static string Url(AppServer server, string path) => new Uri(server.BaseAddress, path).ToString();

    private IBrowserContext? _context;

    /// <summary>A new tab in the shared profile.</summary>
    private async Task<IPage> NewPageAsync(AppServer server, string? path)
    {
        var page = await _context!.NewPageAsync();
        if (path is not null)
            await page.GotoAsync(Url(server, path));
        return page;
    }

    private static async Task<long> ForwardsAsync(HttpClient http)
    {
        using var health = JsonDocument.Parse(await http.GetStringAsync("/api/health"));
        return health.RootElement.GetProperty("forwards").GetInt64();
    }

    /// <summary>Waits until the server has loaded its models (and <paramref name="readyModel"/>, when given), has run
    /// more than <paramref name="forwardsAbove"/> forwards, and its worker is idle, so that nothing of a warm-up lands
    /// in a measurement.</summary>
    private static async Task WaitIdleAsync(AppServer server, string? readyModel = null, long forwardsAbove = -1)
    {
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        for (var i = 0; i < 1200; i++)
        {
            using var health = JsonDocument.Parse(await http.GetStringAsync("/api/health"));
            if (health.RootElement.GetProperty("forwards").GetInt64() <= forwardsAbove)
            {
                await Task.Delay(100);
                continue;
            }
            var models = health.RootElement.GetProperty("models").EnumerateArray().ToArray();
            var ready =
                readyModel is null
                || models.Any(m =>
                    m.GetProperty("name").GetString() == readyModel && m.GetProperty("state").GetString() == "Ready"
                );
            if (
                ready
                && health.RootElement.GetProperty("waiting").GetInt32() == 0
                && models.All(m => m.GetProperty("state").GetString() != "Loading")
            )
                return;
            await Task.Delay(250);
        }
        throw new TimeoutException(
            $"The server did not go idle with {readyModel ?? "its models"} ready: "
                + await http.GetStringAsync("/api/health")
        );
    }
}
