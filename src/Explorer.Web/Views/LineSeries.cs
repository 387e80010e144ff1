namespace Explorer.Web.Views;

/// <summary>
/// One line of a line chart: its name, points and style (null colour: the chart's default; dash: Plotly's names;
/// <paramref name="PointsOnly"/>: markers without a line, for a cloud of points).
/// </summary>
public sealed record LineSeries(
    string Name,
    double[] X,
    double[] Y,
    string? Color = null,
    string? Dash = null,
    bool PointsOnly = false
);
