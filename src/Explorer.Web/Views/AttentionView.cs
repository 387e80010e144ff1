using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Training;

namespace Explorer.Web.Views;

/// <summary>One head's small map in the grid of a layer's heads, with the KV head it reads.</summary>
public sealed record HeadThumbnail(int Head, int KvGroup, double[][] Map);

/// <summary>Which queries the head map shows.</summary>
public enum QueryChoice
{
    /// <summary>Every token's row.</summary>
    Every,

    /// <summary>The last token's row only: what the next prediction reads.</summary>
    Last,

    /// <summary>One chosen token's row.</summary>
    One,
}

/// <summary>
/// The Attention page without its markup: the trace shown, the layer, head and queries in focus, the map and the
/// thumbnails sent for them, the per-head summaries, the induction probe's scores, and the stage of the Layers page's
/// split that holds the layer.
/// </summary>
public sealed class AttentionView
{
    /// <summary>The head index that stands for the mean of the layer's heads.</summary>
    public const int MeanOfHeads = -1;

    public DecoderTrace? Trace { get; private set; }
    public IReadOnlyList<string> Pieces { get; private set; } = [];
    public int Layer { get; private set; }

    /// <summary>A head, or <see cref="MeanOfHeads"/>.</summary>
    public int Head { get; private set; }
    public QueryChoice Queries { get; private set; }

    /// <summary>The token whose row is shown under <see cref="QueryChoice.One"/>.</summary>
    public int Query { get; private set; }

    /// <summary>Stages of the split whose stage of the layer is named (from the Layers page); null: none.</summary>
    public int? Stages { get; private set; }

    public HeadMapView? Map { get; private set; }
    public IReadOnlyList<HeadThumbnail> Thumbnails { get; private set; } = [];
    public double[][] Entropy { get; private set; } = [];
    public double[][] Sink { get; private set; } = [];
    public double[][] Previous { get; private set; } = [];
    public string[] HeadLabels { get; private set; } = [];
    public string[] LayerLabels { get; private set; } = [];
    public IReadOnlyList<LineSeries> Means { get; private set; } = [];

    /// <summary>The induction probe's scores and the model they were measured on.</summary>
    public IReadOnlyList<HeadScore>? Probe { get; private set; }
    public string? ProbeModel { get; private set; }

    public AttentionView(int layer = 0, int head = 0, int? stages = null)
    {
        Layer = Math.Max(0, layer);
        Head = Math.Max(MeanOfHeads, head);
        Stages = stages is > 1 ? stages : null;
    }

    /// <summary>Shows a trace (with attention) or nothing; summaries are rebuilt only when the trace is another
    /// one.</summary>
    public void Show(DecoderTrace? trace, IReadOnlyList<string> pieces)
    {
        if (trace is null || !trace.HasAttention)
        {
            Trace = null;
            Map = null;
            Thumbnails = [];
            return;
        }
        if (!ReferenceEquals(Trace, trace))
        {
            var spec = trace.Spec;
            Entropy = Rounded(trace.HeadEntropy!);
            Sink = Rounded(trace.SinkMass!);
            Previous = Rounded(trace.PreviousTokenScore!);
            HeadLabels = Enumerable.Range(0, spec.AttentionHeads).Select(h => $"h{h}").ToArray();
            LayerLabels = Enumerable.Range(1, spec.Layers).Select(l => $"L{l}").ToArray();
            Means = MeansOverLayers(trace);
            Thumbnails = []; // another trace: the thumbnails are rebuilt below
        }
        Trace = trace;
        Pieces = pieces;
        Focus(Layer, Head);
    }

    public void SetLayer(int layer) => Focus(layer, Head);

    public void SetHead(int head) => Focus(Layer, head);

    public void ShowHead(HeadScore score) => Focus(score.Layer, score.Head);

    public void SetQueries(QueryChoice queries)
    {
        Queries = queries;
        if (queries == QueryChoice.One && Trace is not null)
            Query = Trace.Length - 1;
        Focus(Layer, Head);
    }

    public void SetQuery(int query)
    {
        Queries = QueryChoice.One;
        Query = query;
        Focus(Layer, Head);
    }

    /// <summary>A click on a per-head summary: rows "L1"…"L<n>", columns "h0"…; false when it points at no
    /// head.</summary>
    public bool Click(int layerLabelNumber, int headLabelNumber)
    {
        var (layer, head) = (layerLabelNumber - 1, headLabelNumber);
        if (Trace is null || layer < 0 || head < 0 || layer >= Trace.Layers || head >= Trace.Spec.AttentionHeads)
            return false;
        Focus(layer, head);
        return true;
    }

    private void Focus(int layer, int head)
    {
        if (Trace is not { } trace)
        {
            (Layer, Head) = (Math.Max(0, layer), Math.Max(MeanOfHeads, head));
            return;
        }
        var spec = trace.Spec;
        var layerChanged = layer != Layer || Thumbnails.Count == 0 || Map is null;
        Layer = Math.Clamp(layer, 0, spec.Layers - 1);
        Head = Math.Clamp(head, MeanOfHeads, spec.AttentionHeads - 1);
        Query = Math.Clamp(Query, 0, trace.Length - 1);
        if (layerChanged || Thumbnails.Count != spec.AttentionHeads)
            Thumbnails = Enumerable
                .Range(0, spec.AttentionHeads)
                .Select(h => new HeadThumbnail(h, trace.KvGroup(h), HeadMapView.Thumbnail(trace, Layer, h)))
                .ToArray();
        IReadOnlyList<int>? queries = Queries switch
        {
            QueryChoice.Last => [trace.Length - 1],
            QueryChoice.One => [Query],
            _ => null,
        };
        if (Head != MeanOfHeads)
            Map = HeadMapView.From(trace, Layer, Head, Pieces, queries);
        else
        {
            // The mean over heads: each head's map is copied, averaged here; still one map is sent.
            var maps = Enumerable
                .Range(0, spec.AttentionHeads)
                .Select(h => HeadMapView.From(trace, Layer, h, Pieces, queries))
                .ToArray();
            var mean = maps[0]
                .Weights.Select(
                    (row, r) => row.Select((_, c) => Math.Round(maps.Average(m => m.Weights[r][c]), 3)).ToArray()
                )
                .ToArray();
            Map = maps[0] with { Head = MeanOfHeads, Weights = mean };
        }
    }

    public string MapTitle =>
        Map is null ? ""
        : Head == MeanOfHeads ? $"Layer {Layer + 1}: mean of all heads"
        : $"Layer {Layer + 1}, head {Head} (reads KV head {Map.KvGroup})"
            + (
                ProbeScore(Layer, Head) is { } score
                    ? $"; probe: induction {score.Induction:0.00}, previous-token {score.PreviousToken:0.00}"
                    : ""
            );

    /// <summary>Which stage of <see cref="StageSplit.Optimal"/> at the prompt's length holds the layer in
    /// focus.</summary>
    public string? StageOfLayer()
    {
        if (
            Stages is not { } stages
            || Trace is null
            || StageSplit.Optimal(Trace.Spec, stages, Trace.Length) is not { } plan
        )
            return null;
        var stage = StageSplit.StageOfLayer(plan, Layer);
        var (first, last) = StageSplit.Layers(stage, Trace.Spec.Layers);
        return $"pipeline stage {stage.Index + 1} of {stages} (layers {first}–{last})";
    }

    /// <summary>Records the probe's scores for a model; the page shows them while that model is the one
    /// shown.</summary>
    public void SetProbe(string model, IReadOnlyList<HeadScore>? scores) =>
        (Probe, ProbeModel) = (scores, scores is null ? null : model);

    private HeadScore? ProbeScore(int layer, int head) =>
        Probe?.FirstOrDefault(s => s.Layer == layer && s.Head == head);

    /// <summary>Labels for the heads of the layer in focus that the probe calls induction or previous-token
    /// heads.</summary>
    public IReadOnlyDictionary<int, string> ProbeLabels(string model)
    {
        if (Probe is null || ProbeModel != model)
            return new Dictionary<int, string>();
        return Probe
            .Where(s =>
                s.Layer == Layer
                && (s.Induction >= AttentionProbe.HeadThreshold || s.PreviousToken >= AttentionProbe.HeadThreshold)
            )
            .ToDictionary(
                s => s.Head,
                s => s.Induction >= s.PreviousToken ? $"induction {s.Induction:0.00}" : $"prev {s.PreviousToken:0.00}"
            );
    }

    public string ProbeSummary()
    {
        var probe = Probe ?? [];
        if (probe.Count == 0)
            return "";
        var best = probe.MaxBy(s => s.Induction)!;
        var prev = probe.MaxBy(s => s.PreviousToken)!;
        var induction = probe.Count(s => s.Induction >= AttentionProbe.HeadThreshold);
        var previous = probe.Count(s => s.PreviousToken >= AttentionProbe.HeadThreshold);
        return $"Induction probe (2 × {AttentionProbe.Length} random tokens): {induction} heads score ≥ "
            + $"{AttentionProbe.HeadThreshold} as induction heads, {previous} as previous-token heads. "
            + $"Best induction: layer {best.Layer + 1} head {best.Head} ({best.Induction:0.00}); best "
            + $"previous-token: layer {prev.Layer + 1} head {prev.Head} ({prev.PreviousToken:0.00}).";
    }

    public static int SummaryHeight(ModelSpec spec) => Math.Clamp(140 + spec.Layers * 6, 320, 720);

    private static double[][] Rounded(float[,] m) =>
        Enumerable
            .Range(0, m.GetLength(0))
            .Select(r => Enumerable.Range(0, m.GetLength(1)).Select(c => Math.Round(m[r, c], 3)).ToArray())
            .ToArray();

    private static IReadOnlyList<LineSeries> MeansOverLayers(DecoderTrace trace)
    {
        double[] Mean(float[,] m) =>
            Enumerable
                .Range(0, m.GetLength(0))
                .Select(r => Enumerable.Range(0, m.GetLength(1)).Average(c => (double)m[r, c]))
                .ToArray();
        var x = Enumerable.Range(1, trace.Layers).Select(l => (double)l).ToArray();
        return
        [
            new("entropy", x, Mean(trace.HeadEntropy!), ExplorerTheme.Blue),
            new("sink mass", x, Mean(trace.SinkMass!), ExplorerTheme.Orange),
            new("previous-token score", x, Mean(trace.PreviousTokenScore!), ExplorerTheme.Teal),
        ];
    }
}
