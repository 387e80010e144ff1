using System.Globalization;

namespace Explorer.Web.Views;

/// <summary>
/// Reads a page's URL parameters leniently: a value that cannot be used is left out (the page keeps its own) and
/// noted, naming the value and what is allowed, for the page to show. A hand-edited or hostile link is never an
/// error page.
/// </summary>
public sealed class QueryNotes
{
    private readonly List<string> _notes = [];

    public IReadOnlyList<string> Notes => _notes;

    public void Note(string key, string value, string allowed) =>
        _notes.Add($"{key}={Shorten(value)} was left out: {allowed}.");

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or null (absent, or
    /// noted).</summary>
    public int? Int(string key, string? text, int min, int max)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        if (
            int.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
            && n >= min
            && n <= max
        )
            return n;
        Note(key, text, $"a whole number from {min:N0} to {max:N0}");
        return null;
    }

    /// <summary>The value shown in a note: at most 40 characters, control characters as '?'.</summary>
    public static string Shorten(string value)
    {
        var clean = new string(value.Select(c => char.IsControl(c) ? '?' : c).Take(41).ToArray());
        return clean.Length <= 40 ? clean : clean[..40] + "…";
    }
}
