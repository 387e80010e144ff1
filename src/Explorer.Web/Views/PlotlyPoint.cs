using System.Globalization;
using System.Text.Json;

namespace Explorer.Web.Views;

/// <summary>Reads the values of a clicked Plotly point, which arrive as JSON elements.</summary>
public static class PlotlyPoint
{
    public static double? Number(object? value) =>
        value switch
        {
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            JsonElement { ValueKind: JsonValueKind.String } e
                when double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
            IConvertible c => Convert.ToDouble(c, CultureInfo.InvariantCulture),
            _ => null,
        };

    public static string? Text(object? value) =>
        value switch
        {
            JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
            JsonElement e => e.GetRawText(),
            null => null,
            _ => value.ToString(),
        };

    /// <summary>The number at the end of a category label such as "L12", "h3" or "layer 5"; −1 if there is
    /// none.</summary>
    public static int TrailingNumber(object? value)
    {
        var s = Text(value);
        if (string.IsNullOrEmpty(s))
            return -1;
        var start = s.Length;
        while (start > 0 && char.IsAsciiDigit(s[start - 1]))
            start--;
        return start < s.Length && int.TryParse(s[start..], out var n) ? n : -1;
    }
}
