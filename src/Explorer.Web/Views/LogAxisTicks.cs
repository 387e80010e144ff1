using System.Globalization;

namespace Explorer.Web.Views;

/// <summary>
/// Where a log axis puts its labels, each a full number: at every power of ten in the data's range, or, where the
/// range holds fewer than two, at 1, 2 and 5 times the powers of ten. Plotly's own log labels name the minor ticks
/// "2" and "5" between decades, which reads as 2 and 5 rather than 200 and 500.
/// </summary>
public sealed record LogAxisTicks(IReadOnlyList<double> Values, IReadOnlyList<string> Labels)
{
    public static LogAxisTicks Empty { get; } = new([], []);

    /// <summary>The ticks for the positive, finite values of <paramref name="data"/>.</summary>
    public static LogAxisTicks For(IEnumerable<double> data)
    {
        var positive = data.Where(v => v > 0 && double.IsFinite(v)).ToList();
        return positive.Count == 0 ? Empty : For(positive.Min(), positive.Max());
    }

    public static LogAxisTicks For(double min, double max)
    {
        if (!(min > 0) || !(max >= min) || !double.IsFinite(max))
            return Empty;
        int low = (int)Math.Floor(Math.Log10(min)),
            high = (int)Math.Ceiling(Math.Log10(max));
        var exponents = Enumerable.Range(low, high - low + 1).ToList();
        var decades = exponents.Select(e => Tick(1, e)).ToList();
        var inside = decades.Count(v => v >= min && v <= max);
        var values =
            inside >= 2 ? decades : exponents.SelectMany(e => new[] { Tick(1, e), Tick(2, e), Tick(5, e) }).ToList();
        // One tick beyond the data on each side, so that the axis's padding still has a label near its ends.
        var lowest = values.LastOrDefault(v => v <= min, values[0]);
        var highest = values.FirstOrDefault(v => v >= max, values[^1]);
        var kept = values.Where(v => v >= lowest && v <= highest).ToList();
        return new LogAxisTicks(kept, kept.Select(Label).ToList());
    }

    /// <summary>m·10^e as the double nearest the decimal number, so that 5·10⁻² is 0.05 itself.</summary>
    private static double Tick(int m, int e) => double.Parse($"{m}e{e}", CultureInfo.InvariantCulture);

    /// <summary>A tick's number in full: 0.001, 0.5, 20, 5,000, 1,000,000.</summary>
    public static string Label(double value) =>
        value >= 1000
            ? value.ToString("N0", CultureInfo.InvariantCulture)
            : value.ToString("0.##########", CultureInfo.InvariantCulture);
}
