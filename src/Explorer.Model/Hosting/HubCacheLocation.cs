namespace Explorer.Model.Hosting;

/// <summary>Where the Hugging Face hub cache is, as huggingface_hub finds it.</summary>
public static class HubCacheLocation
{
    /// <summary>
    /// The configured path if one is given ("none" turns the cache off); else HF_HUB_CACHE, HF_HOME/hub or
    /// ~/.cache/huggingface/hub, the first that is set, and only when that folder exists.
    /// </summary>
    public static string? Choose(string? configured, Func<string, string?> environment)
    {
        if (!string.IsNullOrWhiteSpace(configured))
            return string.Equals(configured.Trim(), "none", StringComparison.OrdinalIgnoreCase) ? null : configured;
        var home = environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var standard =
            environment("HF_HUB_CACHE") is { Length: > 0 } hub ? hub
            : environment("HF_HOME") is { Length: > 0 } hfHome ? Path.Combine(hfHome, "hub")
            : Path.Combine(
                environment("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(home, ".cache"),
                "huggingface",
                "hub"
            );
        return Directory.Exists(standard) ? standard : null;
    }
}
