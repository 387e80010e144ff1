namespace Explorer.Core.Specs;

/// <summary>Every model Explorer knows by name: the published shapes, then the minis. The one list pickers and lookups
/// use.</summary>
public static class KnownModels
{
    public static IReadOnlyList<ModelSpec> All { get; } = [.. ModelPresets.All, .. MiniPresets.All];

    public static IReadOnlyList<string> Names { get; } = All.Select(s => s.Name).ToArray();

    /// <summary>A known model by name (case and surrounding spaces ignored).</summary>
    public static bool TryGet(string? name, out ModelSpec spec)
    {
        spec = All.FirstOrDefault(s => string.Equals(s.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))!;
        return spec is not null;
    }

    /// <summary>A known model by name, or an error naming the bad value and listing the known ones.</summary>
    public static ModelSpec Get(string? name, string what = "model") =>
        TryGet(name, out var spec)
            ? spec
            : throw new ArgumentException($"Unknown {what} '{name}'. Known: {string.Join(", ", Names)}.");
}
