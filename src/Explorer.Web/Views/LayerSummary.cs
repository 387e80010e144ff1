using Explorer.Model.Decoder;

namespace Explorer.Web.Views;

/// <summary>
/// What the Layers page draws for one model and prompt: per-layer statistics over depth, per-position matrices for
/// the token × layer heatmap, and the logit lens. Built from a trace once; small next to the trace itself.
/// Layer l = 1…L is the residual stream after block l; boundary 0 is the embedding.
/// </summary>
public sealed record LayerSummary(
    string Model,
    int Layers,
    IReadOnlyList<string> Tokens,
    double[] MeanResidualNorm, // [L + 1], over positions 1…T−1 (position 0 carries the sink)
    double[] GrowthRatio, // [L]
    double[] BlockInfluence, // [L]
    double[] RelativeUpdate, // [L]
    double[] AttentionNorm, // [L]
    double[] FfnNorm, // [L]
    float[,] ResidualNormByPosition, // [L + 1, T]
    float[,] InfluenceByPosition, // [L, T]
    float[,] UpdateByPosition, // [L, T]
    IReadOnlyList<int> LensPositions,
    string[,] LensTopToken, // [L, P]
    float[,] LensTopProbability, // [L, P]
    float[,] LensKl, // [L, P]
    int[] FirstTop1Layer, // [P]: first layer (1-based) whose top token is the final one, from there on
    bool LensPending = false
) // the lens covers fewer positions (the last only, or none yet) until the rest is computed
{
    /// <summary>Relative depth l / L of each layer, so a 30- and a 95-layer model line up.</summary>
    public double[] RelativeDepth => Enumerable.Range(1, Layers).Select(l => (double)l / Layers).ToArray();

    public static LayerSummary From(
        string model,
        DecoderTrace trace,
        IReadOnlyList<string> pieces,
        Func<int, string> tokenText
    )
    {
        var norms = trace.ResidualNorm ?? throw new ArgumentException("The trace kept no residual statistics.");
        int layers = trace.Layers,
            t = trace.Length;
        double Mean(float[,] m, int row, bool skipFirst = false) => DecoderTrace.MeanOverPositions(m, row, skipFirst);
        // The lens over every position, once completed; until then the last position once read, or what the forward
        // computed; none before the last position is read.
        var (lens, positions) =
            trace.FullLens is { } full ? (full, trace.DeferredLensPositions)
            : trace.LastLens is { } last ? (last, [trace.DeferredLensPositions[^1]])
            : trace.LogitLens is { } own ? (own, trace.LensPositions)
            : trace.DeferredLensPositions.Length > 0 ? (new LogitLensEntry[layers, 0], Array.Empty<int>())
            : throw new ArgumentException("The trace kept no logit lens.");
        int p = positions.Length;
        var top = new string[layers, p];
        var prob = new float[layers, p];
        var kl = new float[layers, p];
        var first = new int[p];
        for (var j = 0; j < p; j++)
        {
            var final = lens[layers - 1, j].TopTokens[0];
            first[j] = layers;
            for (var l = layers - 1; l >= 0 && lens[l, j].TopTokens[0] == final; l--)
                first[j] = l + 1;
            for (var l = 0; l < layers; l++)
            {
                top[l, j] = tokenText(lens[l, j].TopTokens[0]);
                prob[l, j] = lens[l, j].TopProbabilities[0];
                kl[l, j] = lens[l, j].KlToFinal;
            }
        }
        return new LayerSummary(
            model,
            layers,
            pieces,
            Enumerable.Range(0, layers + 1).Select(b => trace.MeanResidualNorm(b)).ToArray(),
            Enumerable.Range(0, layers).Select(trace.GrowthRatio).ToArray(),
            Enumerable.Range(0, layers).Select(l => Mean(trace.BlockInfluence!, l)).ToArray(),
            Enumerable.Range(0, layers).Select(l => Mean(trace.RelativeUpdate!, l)).ToArray(),
            Enumerable.Range(0, layers).Select(l => Mean(trace.AttentionNorm!, l)).ToArray(),
            Enumerable.Range(0, layers).Select(l => Mean(trace.FfnNorm!, l)).ToArray(),
            norms,
            trace.BlockInfluence!,
            trace.RelativeUpdate!,
            positions,
            top,
            prob,
            kl,
            first,
            LensPending: trace.FullLens is null && trace.DeferredLensPositions.Length > positions.Length
        );
    }
}
