using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Explorer.Model.Patching;
using Explorer.Web.Services;

namespace Explorer.Web.Views;

/// <summary>
/// What the Interventions page draws from a session's results: the residual-patching map (boundary × position), the
/// head-ablation map (layer × head), the layer-removal curves of the models on one relative-depth axis, a sentence for
/// each, and the downloads. Plain arrays; no tensors.
/// </summary>
public static class InterventionsView
{
    /// <summary>Rows of a residual sweep: the embedding, then the state after each layer.</summary>
    public static string[] BoundaryLabels(int layers) =>
        ["embedding", .. Enumerable.Range(1, layers).Select(l => $"L{l}")];

    public static string[] LayerLabels(int layers) => Enumerable.Range(1, layers).Select(l => $"L{l}").ToArray();

    public static string[] HeadLabels(int heads) => Enumerable.Range(0, heads).Select(h => $"h{h}").ToArray();

    /// <summary>Columns of a residual sweep: position and piece; where the prompts differ, "clean →
    /// corrupted".</summary>
    public static string[] PositionLabels(PreparedProblem p) =>
        Enumerable
            .Range(0, p.Problem.Length)
            .Select(i =>
                p.Problem.Clean[i] == p.Problem.Corrupted[i]
                    ? $"{i} {p.CleanPieces[i]}"
                    : $"{i} {p.CleanPieces[i]}→{p.CorruptedPieces[i]}"
            )
            .ToArray();

    /// <summary>A sweep's values as rows, NaN (no difference to restore) as 0.</summary>
    public static double[][] Rows(SweepResult sweep) =>
        Enumerable
            .Range(0, sweep.Values.GetLength(0))
            .Select(r =>
                Enumerable
                    .Range(0, sweep.Values.GetLength(1))
                    .Select(c => sweep.Values[r, c] is var v && double.IsFinite(v) ? v : 0)
                    .ToArray()
            )
            .ToArray();

    /// <summary>The symmetric colour range of a signed map: the largest magnitude (at least 1e-6, so an all-zero map
    /// draws).</summary>
    public static double Range(SweepResult sweep)
    {
        var max = 1e-6;
        foreach (var v in sweep.Values)
            if (double.IsFinite(v))
                max = Math.Max(max, Math.Abs(v));
        return max;
    }

    /// <summary>The site with the largest magnitude: (row, column, value); null for an empty sweep.</summary>
    public static (int Row, int Column, double Value)? Strongest(SweepResult sweep)
    {
        (int, int, double)? best = null;
        for (var r = 0; r < sweep.Values.GetLength(0); r++)
        for (var c = 0; c < sweep.Values.GetLength(1); c++)
            if (
                double.IsFinite(sweep.Values[r, c])
                && (best is null || Math.Abs(sweep.Values[r, c]) > Math.Abs(best.Value.Item3))
            )
                best = (r, c, sweep.Values[r, c]);
        return best;
    }

    /// <summary>
    /// The most layers the curve removes with the answer still preferred at every step on the way (logit difference
    /// above 0 from 0 to k removed); 0 when removing the first already flips it.
    /// </summary>
    public static int RemovableKeepingAnswer(RemovalCurve curve)
    {
        var k = 0;
        foreach (var point in curve.Points.Skip(1))
        {
            if (point.Metric <= 0)
                break;
            k = point.Removed;
        }
        return k;
    }

    public static string ProblemSentence(PreparedProblem p, SweepResult? residual) =>
        residual is null
            ? $"{p.Model}: answer {p.AnswerPiece} against {p.WrongPiece}, {p.Problem.Length} tokens."
            : $"{p.Model}: logit difference {p.AnswerPiece} − {p.WrongPiece} is {residual.Clean:0.00} on "
                + $"the clean prompt and {residual.Corrupted:0.00} on the corrupted one.";

    public static string HeadSentence(SweepResult heads) =>
        Strongest(heads) is { } s
            ? $"Zeroing head {s.Column} of layer {s.Row + 1} changes the clean logit difference most: "
                + $"{s.Value:+0.00;−0.00} (of {heads.Clean:0.00}). Click a cell to open that head on the "
                + "Attention page."
            : "No head changes the answer.";

    /// <summary>The direct-attribution map's columns: the query heads, then the MLP.</summary>
    public static string[] ComponentLabels(int heads) => [.. HeadLabels(heads), "MLP"];

    public static string DirectSentence(DirectLogitAttribution d)
    {
        var map = d.ToSweep();
        var heads = d.Heads.GetLength(1);
        var where = Strongest(map) is { } s
            ? (s.Column == heads ? $"the MLP of layer {s.Row + 1}" : $"head {s.Column} of layer {s.Row + 1}")
                + $" adds most: {s.Value:+0.00;−0.00}"
            : "no component adds anything";
        var bias = d.AttentionBias.Any(b => b != 0) ? $", o_proj biases {d.AttentionBias.Sum():+0.00;−0.00}" : "";
        return $"Each component's output at the last position, read through the final norm's frozen scale: {where}. "
            + $"Embedding {d.Embedding:+0.00;−0.00}{bias}; all together {d.Total:0.00}, the logit "
            + $"difference itself {d.Actual:0.00}.";
    }

    public static string HeadPatchingSentence(SweepResult patching) =>
        Strongest(patching) is { } s
            ? $"Head {s.Column} of layer {s.Row + 1}'s clean output alone restores most of the answer: "
                + $"{s.Value:0.00} of it (1: all). Click a cell to open that head."
            : "No head's clean output moves the corrupted answer.";

    public static string CurveSentence(RemovalResult r)
    {
        var k = RemovableKeepingAnswer(r.Curve);
        return $"{r.Model}: {k} of {r.Layers} layers ({100.0 * k / r.Layers:0}%) removed, least block "
            + "influence first, before the answer stops being preferred.";
    }

    /// <summary>The logit difference against the fraction of layers removed together (least block influence first), one
    /// line per model.</summary>
    public static IReadOnlyList<LineSeries> CurveLines(IReadOnlyList<RemovalResult> removals) =>
        removals
            .Select(
                (r, i) =>
                    new LineSeries(
                        $"{r.Model} ({r.Layers} layers)",
                        r.Curve.Points.Select(p => p.Fraction).ToArray(),
                        r.Curve.Points.Select(p => p.Metric).ToArray(),
                        ExplorerTheme.SideColors[i % 2]
                    )
            )
            .ToArray();

    /// <summary>The KL divergence from the clean prediction against the fraction removed; a point at 0 KL is drawn at
    /// 1e-6 (log axis).</summary>
    public static IReadOnlyList<LineSeries> KlLines(IReadOnlyList<RemovalResult> removals) =>
        removals
            .Select(
                (r, i) =>
                    new LineSeries(
                        $"{r.Model} ({r.Layers} layers)",
                        r.Curve.Points.Select(p => p.Fraction).ToArray(),
                        r.Curve.Points.Select(p => Math.Max(p.KlFromClean, 1e-6)).ToArray(),
                        ExplorerTheme.SideColors[i % 2]
                    )
            )
            .ToArray();

    /// <summary>Each layer removed alone: the change of the logit difference at the layer's relative depth l /
    /// L.</summary>
    public static IReadOnlyList<LineSeries> EachAloneLines(IReadOnlyList<RemovalResult> removals) =>
        removals
            .Select(
                (r, i) =>
                    new LineSeries(
                        $"{r.Model} ({r.Layers} layers)",
                        Enumerable.Range(1, r.Layers).Select(l => (double)l / r.Layers).ToArray(),
                        Enumerable.Range(0, r.Layers).Select(l => r.EachAlone.Values[l, 0]).ToArray(),
                        ExplorerTheme.SideColors[i % 2]
                    )
            )
            .ToArray();

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Everything the page shows, as one JSON document (layers 1-based, residual row 0 the
    /// embedding).</summary>
    public static string Json(InterventionSession s) =>
        JsonSerializer.Serialize(
            new
            {
                model = s.Model,
                problem = s.Prepared is { } p
                    ? new
                    {
                        clean = p.Problem.Clean,
                        corrupted = p.Problem.Corrupted,
                        cleanPieces = p.CleanPieces,
                        corruptedPieces = p.CorruptedPieces,
                        answer = p.Problem.Answer,
                        wrong = p.Problem.Wrong,
                        answerPiece = p.AnswerPiece,
                        wrongPiece = p.WrongPiece,
                    }
                    : null,
                residual = Sweep(s.Residual),
                attribution = Sweep(s.Attribution),
                rankCorrelation = s.RankCorrelation,
                heads = Sweep(s.Heads),
                headPatching = Sweep(s.HeadPatching),
                directLogitAttribution = s.Direct is { } d
                    ? new
                    {
                        columns = ComponentLabels(d.Heads.GetLength(1)),
                        embedding = d.Embedding,
                        attentionBias = d.AttentionBias,
                        total = d.Total,
                        logitDifference = d.Actual,
                        map = Sweep(d.ToSweep()),
                    }
                    : null,
                removals = s.Removals.Select(r => new
                {
                    model = r.Model,
                    layers = r.Layers,
                    eachAlone = Enumerable.Range(0, r.Layers).Select(l => r.EachAlone.Values[l, 0]).ToArray(),
                    order = r.Curve.Order.Select(l => l + 1).ToArray(),
                    curve = r.Curve.Points.Select(pt => new
                    {
                        removed = pt.Removed,
                        fraction = pt.Fraction,
                        logitDifference = pt.Metric,
                        klFromClean = pt.KlFromClean,
                    }),
                }),
            },
            JsonOptions
        );

    private static object? Sweep(SweepResult? sweep) =>
        sweep is null
            ? null
            : new
            {
                kind = sweep.Kind,
                metric = sweep.Metric,
                clean = sweep.Clean,
                corrupted = sweep.Corrupted,
                rows = Enumerable
                    .Range(0, sweep.Values.GetLength(0))
                    .Select(r =>
                        Enumerable.Range(0, sweep.Values.GetLength(1)).Select(c => sweep.Values[r, c]).ToArray()
                    ),
            };

    /// <summary>One row per value: sweep, model, row (boundary or layer, as the page numbers them), column,
    /// value.</summary>
    public static string Csv(InterventionSession s)
    {
        var csv = new StringBuilder("sweep,model,row,column,value\n");
        void Add(string name, string model, SweepResult? sweep, bool boundaries)
        {
            if (sweep is null)
                return;
            for (var r = 0; r < sweep.Values.GetLength(0); r++)
            for (var c = 0; c < sweep.Values.GetLength(1); c++)
                csv.AppendLine(
                    string.Join(
                        ',',
                        name,
                        model,
                        (boundaries ? r : r + 1).ToString(CultureInfo.InvariantCulture),
                        c.ToString(CultureInfo.InvariantCulture),
                        F(sweep.Values[r, c])
                    )
                );
        }
        Add("residual", s.Model, s.Residual, boundaries: true);
        Add("attribution", s.Model, s.Attribution, boundaries: true);
        Add("heads", s.Model, s.Heads, boundaries: false);
        Add("head-patching", s.Model, s.HeadPatching, boundaries: false);
        Add("direct-logit-attribution", s.Model, s.Direct?.ToSweep(), boundaries: false);
        foreach (var r in s.Removals)
        {
            Add("each-layer-removed", r.Model, r.EachAlone, boundaries: false);
            foreach (var point in r.Curve.Points)
                csv.AppendLine(
                    string.Join(
                        ',',
                        "removal-curve",
                        r.Model,
                        point.Removed.ToString(CultureInfo.InvariantCulture),
                        "logit-difference",
                        F(point.Metric)
                    )
                );
        }
        return csv.ToString();
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
