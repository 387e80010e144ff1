namespace Explorer.Core.Pipeline;

/// <summary>What a unit of the layer sequence is.</summary>
public enum UnitKind { Embedding, Layer, Head, Loss }

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
    long ActivationBytes)
{
    /// <summary>Forward plus the whole backward: the time a stage spends on one micro-batch.</summary>
    public double Time => Forward + InputGradient + WeightGradient;

    /// <summary>The module path torch.distributed.pipelining and torchtitan split at (e.g. <c>layers.12</c>).</summary>
    public string ModulePath => Kind switch
    {
        UnitKind.Embedding => "tok_embeddings",
        UnitKind.Head => "output",
        UnitKind.Loss => "loss",
        _ => Name,
    };
}
