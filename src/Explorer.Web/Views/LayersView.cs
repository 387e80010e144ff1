using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Web.Views;

/// <summary>What the token × layer heatmap shows.</summary>
public enum LayerStatistic
{
    /// <summary>‖h‖ of the residual stream after each layer (the embedding first).</summary>
    ResidualNorm,

    /// <summary>1 − cos(h_in, h_out) of each block.</summary>
    BlockInfluence,

    /// <summary>‖h_out − h_in‖ / ‖h_in‖ of each block.</summary>
    RelativeUpdate,
}

/// <summary>A boundary of the split the Layers page shades: where it falls, what crosses it, and this prompt's ‖h‖
/// there.</summary>
public sealed record StageBoundary(string Where, string Shape, long Bytes, double Norm);

/// <summary>Everything one model's heatmaps take.</summary>
public sealed record ModelCharts(
    double[][] TokenLayer,
    string[] TokenColumns,
    string[] TokenLayerLabels,
    double[][] Lens,
    string[][] LensTokens,
    string[] LensLabels,
    string[] LayerLabels,
    int Block
);

/// <summary>Everything the Layers page's charts take, built once per change so that re-rendering the page resends
/// nothing.</summary>
public sealed record LayerCharts(
    IReadOnlyList<LineSeries> Norm,
    IReadOnlyList<LineSeries> Growth,
    IReadOnlyList<LineSeries> Influence,
    IReadOnlyList<LineSeries> Contributions,
    IReadOnlyList<LineSeries> LensKl,
    IReadOnlyList<LineSeries> Update,
    IReadOnlyList<ModelCharts> PerModel
)
{
    public static readonly LayerCharts Empty = new([], [], [], [], [], [], []);
}

/// <summary>
/// The Layers page without its markup: the models' summaries, what the charts show (position, statistic, compare
/// mode, the stage split shaded), the figures they are drawn from, and where a click or a link leads.
/// </summary>
public sealed class LayersView
{
    /// <summary>Most token columns a token × layer heatmap sends; longer prompts are shown as block means.</summary>
    public const int MaxTokenColumns = 128;

    /// <summary>The stage counts the page offers to shade (1: none).</summary>
    public static readonly IReadOnlyList<int> StageChoices = [1, 2, 4, 8];

    private readonly Func<string, ModelSpec?> _spec;

    /// <param name="spec">The shape of a live model by name (null when it is not loaded).</param>
    public LayersView(Func<string, ModelSpec?> spec) => _spec = spec;

    public bool Compare { get; private set; }

    /// <summary>Residual-norm position: −1 for the mean over positions 1…T−1.</summary>
    public int Position { get; private set; } = -1;
    public LayerStatistic Statistic { get; private set; } = LayerStatistic.ResidualNorm;

    /// <summary>Stages of the split shaded on the depth charts (1: none; single-model view only).</summary>
    public int Stages { get; private set; } = 1;
    public IReadOnlyList<LayerSummary> Summaries { get; private set; } = [];
    public LayerCharts Charts { get; private set; } = LayerCharts.Empty;

    /// <summary>The split shaded: <see cref="StageSplit.Optimal"/> of the first model at the prompt's length.</summary>
    public StagePlan? Split { get; private set; }
    public IReadOnlyList<(double From, double To)>? Bands { get; private set; }
    public IReadOnlyList<StageBoundary> Boundaries { get; private set; } = [];

    public string XTitle => Compare ? "relative depth l / L" : "layer";

    public string StatisticName =>
        Statistic switch
        {
            LayerStatistic.BlockInfluence => "block influence",
            LayerStatistic.RelativeUpdate => "relative update",
            _ => "‖h‖",
        };

    public void SetCompare(bool compare) => Update(() => Compare = compare);

    /// <summary>
    /// The residual-norm chart's positions by name: the mean over positions 1…T−1 (position 0 is the attention sink,
    /// whose norm dwarfs the rest), the last token, then every position with its token piece.
    /// </summary>
    public IReadOnlyList<(int Position, string Label)> PositionChoices
    {
        get
        {
            if (Summaries.Count == 0)
                return [(MeanOfPositions, "mean over positions 1…T−1")];
            var tokens = Summaries[0].Tokens;
            var last = tokens.Count - 1;
            return
            [
                (MeanOfPositions, $"mean over positions 1…{last}"),
                (last, $"last token: {last} ‘{tokens[last]}’"),
                .. Enumerable.Range(0, last).Select(t => (t, $"{t} ‘{tokens[t]}’")),
            ];
        }
    }

    /// <summary>The <see cref="Position"/> that stands for the mean over positions 1…T−1.</summary>
    public const int MeanOfPositions = -1;

    public void SetPosition(int position) =>
        Update(() =>
            Position = Math.Clamp(position, -1, Math.Max(-1, (Summaries.FirstOrDefault()?.Tokens.Count ?? 0) - 1))
        );

    public void SetStatistic(LayerStatistic statistic) => Update(() => Statistic = statistic);

    /// <summary>Shade a split of <paramref name="stages"/> stages; a count not offered is taken as none.</summary>
    public void SetStages(int stages) => Update(() => Stages = StageChoices.Contains(stages) ? stages : 1);

    public void SetSummaries(IReadOnlyList<LayerSummary> summaries) =>
        Update(() =>
        {
            Summaries = summaries;
            if (Position >= (summaries.FirstOrDefault()?.Tokens.Count ?? 0))
                Position = -1;
        });

    private void Update(Action change)
    {
        change();
        PlanBands();
        Charts = Keep(Charts, BuildCharts());
    }

    /// <summary>The new figures, with every one that draws what the previous did handed back as it was (see
    /// <see cref="Unchanged"/>): a lens completing redraws the lens, a new position the norm chart.</summary>
    private static LayerCharts Keep(LayerCharts previous, LayerCharts next) =>
        new(
            Unchanged.Keep(previous.Norm, next.Norm),
            Unchanged.Keep(previous.Growth, next.Growth),
            Unchanged.Keep(previous.Influence, next.Influence),
            Unchanged.Keep(previous.Contributions, next.Contributions),
            Unchanged.Keep(previous.LensKl, next.LensKl),
            Unchanged.Keep(previous.Update, next.Update),
            next.PerModel.Count == previous.PerModel.Count
                ? next.PerModel.Zip(previous.PerModel, Keep).ToArray()
                : next.PerModel
        );

    private static ModelCharts Keep(ModelCharts next, ModelCharts previous) =>
        new(
            Unchanged.Keep(previous.TokenLayer, next.TokenLayer),
            Unchanged.Keep(previous.TokenColumns, next.TokenColumns),
            Unchanged.Keep(previous.TokenLayerLabels, next.TokenLayerLabels),
            Unchanged.Keep(previous.Lens, next.Lens),
            Unchanged.Keep(previous.LensTokens, next.LensTokens),
            Unchanged.Keep(previous.LensLabels, next.LensLabels),
            Unchanged.Keep(previous.LayerLabels, next.LayerLabels),
            next.Block
        );

    /// <summary>
    /// The Pipeline page opening exactly this split: the model, the stage count, the prompt's length as the sequence
    /// and the boundaries as the planner counts units; null when no split is shaded.
    /// </summary>
    public string? PlanLink()
    {
        if (Split is not { } plan || Summaries.Count == 0)
            return null;
        return $"pipeline?model={Uri.EscapeDataString(Summaries[0].Model)}&stages={plan.Stages.Count}"
            + $"&seq={SequenceLength(Summaries[0])}"
            + $"&method=manual&boundaries={string.Join(",", plan.Boundaries)}";
    }

    private static int SequenceLength(LayerSummary s) => Math.Max(2, s.Tokens.Count);

    /// <summary>The model and 0-based layer a click on a depth chart's line points at (<paramref name="linesPerModel"/>
    /// lines each).</summary>
    public (string Model, int Layer)? LayerAt(int curve, double x, int linesPerModel)
    {
        var summary = Summaries.ElementAtOrDefault(curve / Math.Max(1, linesPerModel));
        if (summary is null)
            return null;
        var layer = Compare ? (int)Math.Round(x * summary.Layers) : (int)Math.Round(x);
        return (summary.Model, Math.Clamp(layer, 1, summary.Layers) - 1);
    }

    private void PlanBands()
    {
        Split = null;
        Bands = null;
        Boundaries = [];
        if (Compare || Stages < 2 || Summaries.Count == 0 || _spec(Summaries[0].Model) is not { } spec)
            return;
        var summary = Summaries[0];
        var tokens = SequenceLength(summary);
        if (StageSplit.Optimal(spec, Stages, tokens) is not { } plan)
            return;
        Split = plan;
        // Unit u is the embedding (0), layer u (1…L), the head (L + 1) or the loss (L + 2); layer l sits at x = l.
        Bands = plan
            .Stages.Select(s => (Math.Max(0, s.FirstUnit) - 0.5, Math.Min(spec.Layers + 0.5, s.LastUnit + 0.5)))
            .ToArray();
        Boundaries = plan
            .Boundaries.Where(u => u >= 1 && u <= spec.Layers + 1)
            .Select(u =>
            {
                var after = u - 1; // the residual stream after layer u − 1 (0: the embedding) crosses to the next stage
                var where = after == 0 ? "after the embedding" : $"after layer {after}";
                return new StageBoundary(
                    where,
                    $"residual stream, (micro-batch, {summary.Tokens.Count}, {spec.HiddenSize})",
                    2L * summary.Tokens.Count * spec.HiddenSize,
                    summary.MeanResidualNorm[after]
                );
            })
            .ToArray();
    }

    private LayerCharts BuildCharts() =>
        new(
            NormLines(),
            Lines(s => s.GrowthRatio),
            Lines(s => s.BlockInfluence),
            ContributionLines(),
            LensKlLines(),
            Lines(s => s.RelativeUpdate),
            Summaries
                .Select(s => new ModelCharts(
                    TokenLayer(s),
                    TokenColumns(s),
                    LayerLabels(s, Statistic == LayerStatistic.ResidualNorm),
                    LensProbabilities(s),
                    LensTokens(s),
                    s.LensPositions.Select(p => s.Tokens[p]).ToArray(),
                    LayerLabels(s, false),
                    Block(s)
                ))
                .ToArray()
        );

    private static string Color(int side) => ExplorerTheme.SideColors[side % ExplorerTheme.SideColors.Length];

    /// <summary>x of each layer (or, with the embedding, of the embedding and each layer): l, or l / L in compare
    /// mode.</summary>
    private double[] X(LayerSummary s, bool withEmbedding)
    {
        if (Compare)
            return withEmbedding ? [0, .. s.RelativeDepth] : s.RelativeDepth;
        return Enumerable
            .Range(withEmbedding ? 0 : 1, s.Layers + (withEmbedding ? 1 : 0))
            .Select(l => (double)l)
            .ToArray();
    }

    private IReadOnlyList<LineSeries> Lines(Func<LayerSummary, double[]> values) =>
        Summaries.Select((s, i) => new LineSeries(s.Model, X(s, false), values(s), Color(i))).ToArray();

    /// <summary>KL at the last position per model whose lens has been read there (a model's color kept).</summary>
    private IReadOnlyList<LineSeries> LensKlLines() =>
        Summaries
            .Select((s, i) => (s, i))
            .Where(m => m.s.LensPositions.Count > 0)
            .Select(m => new LineSeries(
                m.s.Model,
                X(m.s, false),
                Column(m.s.LensKl, m.s.LensPositions.Count - 1),
                Color(m.i)
            ))
            .ToArray();

    private IReadOnlyList<LineSeries> NormLines() =>
        Summaries
            .Select(
                (s, i) =>
                    new LineSeries(
                        s.Model,
                        X(s, true),
                        Position < 0
                            ? s.MeanResidualNorm
                            : Enumerable
                                .Range(0, s.Layers + 1)
                                .Select(b => (double)s.ResidualNormByPosition[b, Position])
                                .ToArray(),
                        Color(i)
                    )
            )
            .ToArray();

    private IReadOnlyList<LineSeries> ContributionLines() =>
        Summaries
            .SelectMany(
                (s, i) =>
                    new[]
                    {
                        new LineSeries($"{s.Model}: attention", X(s, false), s.AttentionNorm, Color(i)),
                        new LineSeries($"{s.Model}: MLP", X(s, false), s.FfnNorm, Color(i), "dot"),
                    }
            )
            .ToArray();

    private static double[] Column(float[,] m, int column) =>
        Enumerable.Range(0, m.GetLength(0)).Select(r => (double)m[r, column]).ToArray();

    private static int Block(LayerSummary s) => BlockMeans.BlockFor(s.Tokens.Count, MaxTokenColumns);

    private double[][] TokenLayer(LayerSummary s)
    {
        var m = Statistic switch
        {
            LayerStatistic.BlockInfluence => s.InfluenceByPosition,
            LayerStatistic.RelativeUpdate => s.UpdateByPosition,
            _ => s.ResidualNormByPosition,
        };
        return BlockMeans.Of(BlockMeans.Groups(m.GetLength(0), 1), m.GetLength(1), Block(s), (r, t) => m[r, t]);
    }

    private static string[] TokenColumns(LayerSummary s)
    {
        var block = Block(s);
        return block == 1
            ? s.Tokens.ToArray()
            : BlockMeans.Groups(s.Tokens.Count, block).Select(g => $"{g[0]}–{g[^1]}").ToArray();
    }

    private static string[] LayerLabels(LayerSummary s, bool withEmbedding) =>
        (withEmbedding ? ["embedding"] : Array.Empty<string>())
            .Concat(Enumerable.Range(1, s.Layers).Select(l => $"layer {l}"))
            .ToArray();

    private static double[][] LensProbabilities(LayerSummary s) =>
        Enumerable
            .Range(0, s.Layers)
            .Select(l =>
                Enumerable.Range(0, s.LensPositions.Count).Select(j => (double)s.LensTopProbability[l, j]).ToArray()
            )
            .ToArray();

    private static string[][] LensTokens(LayerSummary s) =>
        Enumerable
            .Range(0, s.Layers)
            .Select(l => Enumerable.Range(0, s.LensPositions.Count).Select(j => s.LensTopToken[l, j]).ToArray())
            .ToArray();

    /// <summary>The note under a model's lens heatmap; <paramref name="onRequest"/>: the other positions wait to be
    /// asked for.</summary>
    public static string LensNote(LayerSummary s, bool onRequest = false)
    {
        if (s.LensPositions.Count == 0)
            return "The logit lens at the last position is being read…";
        var last = s.LensPositions.Count - 1;
        var note =
            $"The final prediction at the last position ({s.LensTopToken[s.Layers - 1, last]}) is top-1 "
            + $"from layer {s.FirstTop1Layer[last]} of {s.Layers} on.";
        if (s.LensPending)
            return note
                + (
                    onRequest
                        ? " The lens at the other positions runs when asked (the button below)."
                        : " The lens at the other positions is being computed…"
                );
        return s.LensPositions.Count < s.Tokens.Count
            ? note + $" Lens shown for the last {s.LensPositions.Count} positions."
            : note;
    }
}
