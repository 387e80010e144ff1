namespace Explorer.Core.Pipeline;

/// <summary>What a unit of the layer sequence is.</summary>
public enum UnitKind
{
    Embedding,
    Layer,
    Head,
    Loss,
}

/// <summary>
/// One unit a pipeline split can place: the embedding, a decoder layer, the final norm + LM head, or the loss.
/// Times are per micro-batch in milliseconds: forward, input-gradient (B) and weight-gradient (W) backward.
/// </summary>
public sealed record PipelineUnit(
    string Name,
    UnitKind Kind,
    double Forward,
    double InputGradient,
    double WeightGradient,
    long Parameters,
    long ActivationBytes
)
{
    /// <summary>Forward plus the whole backward: the time a stage spends on one micro-batch.</summary>
    public double Time => Forward + InputGradient + WeightGradient;

    /// <summary>The module path torch.distributed.pipelining and torchtitan split at (e.g. <c>layers.12</c>).</summary>
    public string ModulePath =>
        Kind switch
        {
            UnitKind.Embedding => "tok_embeddings",
            UnitKind.Head => "output",
            UnitKind.Loss => "loss",
            _ => Name,
        };
}

/// <summary>
/// How a decoder's units are numbered, in one place: 0 the embedding, 1…L the decoder layers (layer i, 0-based, is
/// unit i + 1), L + 1 the final norm and LM head, L + 2 the loss; L + 3 units in all.
/// </summary>
public static class UnitNumbering
{
    /// <summary>Units of a decoder with <paramref name="layers"/> layers.</summary>
    public static int Count(int layers) => layers + 3;

    /// <summary>The unit of 0-based decoder layer <paramref name="layer"/>.</summary>
    public static int OfLayer(int layer) => layer + 1;

    /// <summary>The final norm and LM head.</summary>
    public static int Head(int layers) => layers + 1;

    /// <summary>The 1-based decoder layers among units <paramref name="first"/> to <paramref name="last"/>
    /// (inclusive); First > Last when they hold none.</summary>
    public static (int First, int Last) LayersIn(int first, int last, int layers) =>
        (Math.Max(1, first), Math.Min(layers, last));
}
