using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>The LM head and embedding measured in decoder layers, the unit a pipeline split counts in.</summary>
public sealed record LayerEquivalents(double EmbeddingByParameters, double HeadByParameters, double HeadByFlops);

/// <summary>Activation bytes of one layer for one micro-batch, under each recomputation policy.</summary>
public sealed record ActivationBytes(int MicroBatch, long None, long Selective, long Full)
{
    public long For(Recomputation r) =>
        r switch
        {
            Recomputation.None => None,
            Recomputation.Selective => Selective,
            _ => Full,
        };
}

/// <summary>Everything the Architecture page and <c>explorer specs</c> show about one spec at one sequence
/// length.</summary>
public sealed record ArchitectureReport(
    ModelSpec Spec,
    int SequenceLength,
    ParameterBreakdown Parameters,
    FlopCount Flops,
    long DeepSeekM,
    long ExactM,
    long KvCacheBytesPerToken,
    long KvCacheBytesPerSequence,
    IReadOnlyDictionary<string, long> WeightBytes,
    long TrainingStateBytes,
    ActivationBytes ActivationsPerLayer,
    LayerEquivalents LayerEquivalents
)
{
    /// <summary>The 16-bit format used for the headline KV and weight figures.</summary>
    public static readonly DataType HeadlineType = DataType.BFloat16;

    /// <summary>bf16 weights plus one full sequence of bf16 KV cache.</summary>
    public long InferenceBytes => WeightBytes[HeadlineType.Name] + KvCacheBytesPerSequence;

    /// <summary>Adam state plus every layer's activations for one sequence with selective recomputation, on one
    /// device.</summary>
    public long TrainingBytes => TrainingStateBytes + Spec.Layers * ActivationsPerLayer.Selective;

    /// <summary>How far DeepSeek's M overstates (positive) or understates the exact figure, as a fraction.</summary>
    public double DeepSeekMError => (double)(DeepSeekM - ExactM) / ExactM;

    public static ArchitectureReport Create(ModelSpec spec, int sequenceLength)
    {
        var parameters = ParameterBreakdown.Of(spec);
        var flops = FlopCount.Of(spec, sequenceLength);
        var layer = parameters.PerLayer.Total;
        return new ArchitectureReport(
            spec,
            sequenceLength,
            parameters,
            flops,
            FlopCount.DeepSeekM(spec, sequenceLength),
            FlopCount.ExactM(spec, sequenceLength),
            MemoryAccount.KvCacheBytesPerToken(spec, HeadlineType),
            MemoryAccount.KvCacheBytes(spec, sequenceLength, HeadlineType),
            DataType.All.ToDictionary(t => t.Name, t => t.BytesFor(parameters.Total)),
            MemoryAccount.TrainingStateBytes(spec),
            new ActivationBytes(
                1,
                MemoryAccount.ActivationBytesPerLayer(spec, sequenceLength, 1, Recomputation.None),
                MemoryAccount.ActivationBytesPerLayer(spec, sequenceLength, 1, Recomputation.Selective),
                MemoryAccount.ActivationBytesPerLayer(spec, sequenceLength, 1, Recomputation.Full)
            ),
            new LayerEquivalents(
                (double)parameters.Embedding / layer,
                (double)(spec.TiedEmbeddings ? parameters.Embedding : parameters.LmHead) / layer,
                (double)flops.LmHead / flops.PerLayer
            )
        );
    }
}
