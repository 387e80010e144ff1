using System.Diagnostics;

namespace Explorer.Cli;

/// <summary>Wall-clock timing for the benchmarks: one run, or the median of several.</summary>
public static class Timing
{
    public static double Milliseconds(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalMilliseconds;
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    public static double Median(int repeats, Action action) =>
        Median(Enumerable.Range(0, repeats).Select(_ => Milliseconds(action)).ToArray());
}
