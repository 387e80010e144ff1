namespace Explorer.Web.Views;

/// <summary>
/// The previous figure where a rebuilt one draws the same thing. The charts compare their inputs by reference (cheap
/// on every render), so a view that rebuilds every figure on any change hands unchanged ones back as they were:
/// only the charts whose figure changed are sent to the browser and drawn again.
/// </summary>
public static class Unchanged
{
    public static IReadOnlyList<LineSeries> Keep(IReadOnlyList<LineSeries> previous, IReadOnlyList<LineSeries> next) =>
        previous.Count == next.Count && previous.Zip(next).All(p => Same(p.First, p.Second)) ? previous : next;

    public static T[] Keep<T>(T[] previous, T[] next) => previous.SequenceEqual(next) ? previous : next;

    public static T[][] Keep<T>(T[][] previous, T[][] next) =>
        previous.Length == next.Length && previous.Zip(next).All(p => p.First.SequenceEqual(p.Second))
            ? previous
            : next;

    private static bool Same(LineSeries a, LineSeries b) =>
        (a.Name, a.Color, a.Dash, a.PointsOnly) == (b.Name, b.Color, b.Dash, b.PointsOnly)
        && a.X.SequenceEqual(b.X)
        && a.Y.SequenceEqual(b.Y);
}
