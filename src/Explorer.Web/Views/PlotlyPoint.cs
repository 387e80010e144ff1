using System.Globalization;
using System.Text.Json;

namespace Explorer.Web.Views;

/// <summary>Reads the values of a clicked Plotly point, which arrive as JSON elements.</summary>
public static class PlotlyPoint
{
    public static double? Number(object? value) => value switch
    {
        JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
        JsonElement { ValueKind: JsonValueKind.String } e when double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        IConvertible c => Convert.ToDouble(c, CultureInfo.InvariantCulture),
        _ => null,
    };

    public static string? Text(object? value) => value switch
    {
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        JsonElement e => e.GetRawText(),
        null => null,
        _ => value.ToString(),
    };

    /// <summary>The index in front of a "3·label" category (HeatmapChart makes its labels unique that way).</summary>
    public static int Index(object? value) =>
        Text(value) is { } s && s.IndexOf('·') is > 0 and var dot && int.TryParse(s[..dot], out var i) ? i : -1;
}
