namespace Explorer.Web.Views;

/// <summary>Values rounded for the wire: a chart shows 3–4 digits, so sending 17 wastes the connection.</summary>
public static class Precision
{
    public static double Significant(double value, int digits = 4)
    {
        if (value == 0 || !double.IsFinite(value))
            return value;
        var scale = Math.Pow(10, digits - 1 - (int)Math.Floor(Math.Log10(Math.Abs(value))));
        return Math.Round(value * scale) / scale;
    }
}
