using Microsoft.Playwright;

namespace Explorer.Browser.Tests;

/// <summary>One server and one headless Chromium shared by the tests of a class or a collection (<see
/// cref="AppCollection"/>).</summary>
public class BrowserFixture : IAsyncLifetime
{
    public AppServer Server { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    private IPlaywright? _playwright;

    public async Task InitializeAsync()
    {
        if (!File.Exists(BrowserFactAttribute.ChromiumPath) && Environment.GetEnvironmentVariable("CI") != "true")
            return; // every test here is skipped
        Server = await AppServer.StartAsync(await PrepareAsync());
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(LaunchOptions);
    }

    /// <summary>
    /// A 1600 × 1300 page at <paramref name="path"/>, once both default live models are loaded and the page is
    /// interactive (its circuit connected).
    /// </summary>
    public async Task<IPage> OpenLiveAsync(string path)
    {
        var page = await Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        await page.GotoAsync(new Uri(Server.BaseAddress, path).ToString());
        await Assertions
            .Expect(page.Locator("[data-testid=model-status]"))
            .ToContainTextAsync("2 live models", new() { Timeout = 60000 });
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 30000 });
        return page;
    }

    /// <summary>
    /// A second Chromium with a profile on disk in <paramref name="folder"/>, as a user's browser has: it keeps the
    /// scripts it compiled between tabs (V8's code cache), which the fixture's contexts, off the record, never do.
    /// </summary>
    public Task<IBrowserContext> LaunchProfileAsync(string folder, ViewportSize viewport)
    {
        var launch = LaunchOptions;
        return _playwright!.Chromium.LaunchPersistentContextAsync(
            folder,
            new BrowserTypeLaunchPersistentContextOptions
            {
                ExecutablePath = launch.ExecutablePath,
                Headless = launch.Headless,
                Args = launch.Args,
                ViewportSize = viewport,
            }
        );
    }

    /// <summary>What a fixture sets up before the server starts, and the environment the server gets.</summary>
    protected virtual Task<IReadOnlyDictionary<string, string>?> PrepareAsync() =>
        Task.FromResult<IReadOnlyDictionary<string, string>?>(null);

    /// <summary>
    /// Chromium's features switched off: Playwright's own list (1.64.1, chromiumSwitches.ts; a second
    /// <c>--disable-features</c> replaces the first, so it is repeated here), and the omnibox popups drawn as web
    /// pages. Headless Chromium opens each new page in a window of its own and loads its omnibox popup there, a page
    /// of hundreds of modules, beside Explorer's page (docs/benchmarks.md); a user's browser loads it once per window,
    /// not with each link.
    /// </summary>
    private static readonly string[] DisabledFeatures =
    [
        "AvoidUnnecessaryBeforeUnloadCheckSync",
        "DestroyProfileOnBrowserClose",
        "DialMediaRouteProvider",
        "GlobalMediaControls",
        "HttpsUpgrades",
        "LensOverlay",
        "MediaRouter",
        "PaintHolding",
        "ThirdPartyStoragePartitioning",
        "BlockOriginHeaderModificationOnRedirect",
        "AvoidCorsURLLoaderRestartOnRedirect",
        "Translate",
        "AutoDeElevate",
        "OptimizationHints",
        "NetworkTimeServiceQuerying",
        "AimEnabled",
        "WebUIOmniboxPopup",
        "WebUIOmniboxFullPopup",
        "WebUIOmniboxAimPopup",
    ];

    /// <summary>Debian's headless Chromium, kept from calling out: this machine has no network beyond
    /// loopback.</summary>
    public static BrowserTypeLaunchOptions LaunchOptions =>
        new()
        {
            ExecutablePath = BrowserFactAttribute.ChromiumPath,
            Headless = true,
            Args =
            [
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-features=" + string.Join(',', DisabledFeatures),
            ],
        };

    public virtual async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.CloseAsync();
        _playwright?.Dispose();
        if (Server is not null)
            await Server.DisposeAsync();
    }

    /// <summary>Where screenshots go when EXPLORER_SCREENSHOTS names a folder (the README's images are made this
    /// way).</summary>
    public static string? ScreenshotFolder => Environment.GetEnvironmentVariable("EXPLORER_SCREENSHOTS");
}
