namespace Explorer.Browser.Tests;

/// <summary>
/// A test that needs Debian's Chromium. Skipped, with the reason, where it is missing; in CI (CI=true) it always
/// runs, so a missing browser fails the build instead of hiding the suite.
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public BrowserFactAttribute()
    {
        var ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (!ci && !File.Exists(ChromiumPath))
            Skip = $"Chromium not found at {ChromiumPath}: install it with 'apt-get install chromium' (.ci/run does).";
    }
}
