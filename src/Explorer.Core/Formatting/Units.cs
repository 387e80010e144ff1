using System.Globalization;

namespace Explorer.Core.Formatting;

/// <summary>Human-readable counts, FLOPs and bytes, in one style across the page and the CLI.</summary>
public static class Units
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>6.91 B, 419 M, 8.19 K: decimal (SI) prefixes, as parameter counts are quoted.</summary>
    public static string Count(double value) => Scaled(value, 1000, ["", " K", " M", " B", " T", " P"]);

    /// <summary>FLOPs with SI prefixes: 13.9 GFLOP.</summary>
    public static string Flops(double value) =>
        Scaled(value, 1000, [" FLOP", " KFLOP", " MFLOP", " GFLOP", " TFLOP", " PFLOP", " EFLOP"]);

    /// <summary>Bytes with binary prefixes: 480 KiB, 12.9 GiB.</summary>
    public static string Bytes(double value) => Scaled(value, 1024, [" B", " KiB", " MiB", " GiB", " TiB", " PiB"]);

    /// <summary>The exact integer with thousands separators.</summary>
    public static string Exact(long value) => value.ToString("N0", Invariant);

    /// <summary>A signed percentage: +14.2%.</summary>
    public static string Percent(double fraction) =>
        (fraction >= 0 ? "+" : "") + (fraction * 100).ToString("0.0", Invariant) + "%";

    /// <summary>A ratio to two decimals: 2.07.</summary>
    public static string Ratio(double value) => value.ToString("0.00", Invariant);

    private static string Scaled(double value, double step, string[] suffixes)
    {
        var i = 0;
        var v = Math.Abs(value);
        while (v >= step && i < suffixes.Length - 1)
        {
            v /= step;
            i++;
        }
        var digits =
            v >= 100 || i == 0 && v == Math.Floor(v) ? "0"
            : v >= 10 ? "0.0"
            : "0.00";
        return (value < 0 ? "-" : "") + v.ToString(digits, Invariant) + suffixes[i];
    }
}
