using Explorer.Core.Specs;

namespace Explorer.Web.Views;

/// <summary>
/// The Layers page's compare mode: the page's model beside a second live model, lined up on relative depth. The URL
/// carries the second as <c>compare=NAME</c> (<c>compare=true</c>, as older links say, picks the default partner).
/// </summary>
public static class ComparePair
{
    /// <summary>
    /// The model to compare <paramref name="model"/> with: the other mini for a mini, else the 95-layer mini, the
    /// deep side of the comparison Explorer is about.
    /// </summary>
    public static string DefaultPartner(string model) =>
        string.Equals(model, MiniPresets.DeepSeek67BMini.Name, StringComparison.OrdinalIgnoreCase)
            ? MiniPresets.DeepSeek7BMini.Name
            : MiniPresets.DeepSeek67BMini.Name;

    /// <summary>
    /// Reads <c>compare</c> from a URL: null when compare mode is off (absent, empty or "false"), the default partner
    /// for "true", else the name given (case as given; a model that is not live is named by the run's error).
    /// </summary>
    public static string? FromQuery(string? query, string model)
    {
        var value = query?.Trim();
        if (string.IsNullOrEmpty(value) || value.Equals("false", StringComparison.OrdinalIgnoreCase))
            return null;
        if (value.Equals("true", StringComparison.OrdinalIgnoreCase))
            return DefaultPartner(model);
        return value.Length > 200 ? null : value;
    }

    /// <summary>The models to run: the page's model, then its partner unless they are the same.</summary>
    public static IReadOnlyList<string> Models(string model, string? partner) =>
        partner is null || string.Equals(partner, model, StringComparison.OrdinalIgnoreCase)
            ? [model]
            : [model, partner];
}
