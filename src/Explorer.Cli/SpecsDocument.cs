using Explorer.Core.Accounting;
using Explorer.Core.Specs;

namespace Explorer.Cli;

/// <summary>The JSON shape of <c>explorer specs --json</c> (documented in docs/cli.md). Counts are exact
/// integers.</summary>
public sealed record SpecsDocument(
    string Model,
    int SequenceLength,
    SpecsDocument.ConfigPart Config,
    SpecsDocument.ParametersPart Parameters,
    long FlopsPerToken,
    long TrainingFlopsPerToken,
    long DeepSeekM,
    long ExactM,
    long KvCacheBytesPerToken,
    long KvCacheBytesPerSequence,
    IReadOnlyDictionary<string, long> WeightBytes,
    long TrainingStateBytes,
    ActivationBytes ActivationBytesPerLayer,
    LayerEquivalents LayerEquivalents
)
{
    public sealed record ConfigPart(
        int Layers,
        int HiddenSize,
        int IntermediateSize,
        int AttentionHeads,
        int KeyValueHeads,
        int HeadDim,
        int VocabularySize,
        int ContextLength,
        double RopeTheta,
        double NormEpsilon,
        bool TiedEmbeddings,
        string NormPlacement,
        string FfnKind,
        string Family = "",
        string Architecture = "",
        string Design = ""
    );

    public sealed record ParametersPart(
        long Total,
        long PerLayer,
        long Embedding,
        long Head,
        long FinalNorm,
        long AllLayers,
        long NonEmbedding,
        LayerParameters Layer
    );

    public static SpecsDocument From(ArchitectureReport r)
    {
        var s = r.Spec;
        var p = r.Parameters;
        return new SpecsDocument(
            s.Name,
            r.SequenceLength,
            new ConfigPart(
                s.Layers,
                s.HiddenSize,
                s.IntermediateSize,
                s.AttentionHeads,
                s.KeyValueHeads,
                s.HeadDim,
                s.VocabularySize,
                s.ContextLength,
                s.RopeTheta,
                s.NormEpsilon,
                s.TiedEmbeddings,
                s.NormPlacement.ToString(),
                s.FfnKind.ToString(),
                s.Family.ToString(),
                s.ArchitectureClass,
                DesignSummary.Features(s)
            ),
            new ParametersPart(
                p.Total,
                p.PerLayer.Total,
                p.Embedding,
                p.LmHead,
                p.FinalNorm,
                p.AllLayers,
                p.NonEmbedding,
                p.PerLayer
            ),
            r.Flops.ForwardPerToken,
            r.Flops.TrainingPerToken,
            r.DeepSeekM,
            r.ExactM,
            r.KvCacheBytesPerToken,
            r.KvCacheBytesPerSequence,
            r.WeightBytes,
            r.TrainingStateBytes,
            r.ActivationsPerLayer,
            r.LayerEquivalents
        );
    }
}
