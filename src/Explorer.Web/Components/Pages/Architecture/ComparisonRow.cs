using Explorer.Core.Accounting;
using Explorer.Core.Formatting;

namespace Explorer.Web.Components.Pages.Architecture;

/// <summary>One quantity for both models: exact values, readable values, and B relative to A.</summary>
public sealed record ComparisonRow(
    string Quantity,
    string ExactA,
    string ReadableA,
    string ExactB,
    string ReadableB,
    string Ratio,
    string? Note = null
)
{
    public bool IsSection => ExactA.Length == 0 && ExactB.Length == 0 && Ratio.Length == 0;

    public static ComparisonRow Section(string name) => new(name, "", "", "", "", "");

    /// <summary>The compute and memory table of the Architecture page.</summary>
    public static IReadOnlyList<ComparisonRow> CostRows(ArchitectureReport a, ArchitectureReport b)
    {
        ComparisonRow Count(
            string q,
            Func<ArchitectureReport, long> f,
            Func<double, string> readable,
            string? note = null
        ) =>
            new(
                q,
                Units.Exact(f(a)),
                readable(f(a)),
                Units.Exact(f(b)),
                readable(f(b)),
                Units.Ratio((double)f(b) / f(a)) + "×",
                note
            );

        ComparisonRow Layers(string q, Func<LayerEquivalents, double> f, string? note = null) =>
            new(
                q,
                Units.Ratio(f(a.LayerEquivalents)),
                "",
                Units.Ratio(f(b.LayerEquivalents)),
                "",
                Units.Ratio(f(b.LayerEquivalents) / f(a.LayerEquivalents)) + "×",
                note
            );

        var bf16 = ArchitectureReport.HeadlineType.Name;
        return
        [
            Section("parameters"),
            Count("total", r => r.Parameters.Total, Units.Count),
            Count("per decoder layer", r => r.Parameters.PerLayer.Total, Units.Count),
            Count("embedding", r => r.Parameters.Embedding, Units.Count),
            Count("LM head", r => r.Parameters.LmHead, Units.Count),
            Section("the ends of the stack, in decoder layers"),
            Layers(
                "embedding, by parameters",
                e => e.EmbeddingByParameters,
                "what a pipeline's first stage carries besides its layers"
            ),
            Layers("LM head, by parameters", e => e.HeadByParameters, "what the last stage carries (plus the loss)"),
            Layers("LM head, by forward FLOPs", e => e.HeadByFlops, "2·V·d against one layer's FLOPs per token"),
            Section($"compute per token (sequence of {a.SequenceLength:N0})"),
            Count(
                "forward FLOPs, causal attention",
                r => r.Flops.ForwardPerToken,
                Units.Flops,
                "2 FLOPs per weight in each matmul, plus QKᵀ and AV over the keys each query sees"
            ),
            Count("training FLOPs (3× forward)", r => r.Flops.TrainingPerToken, Units.Flops),
            Count(
                "DeepSeek M = 72·n·d² + 12·n·d·l",
                r => r.DeepSeekM,
                Units.Flops,
                "the paper's non-embedding training FLOPs/token; assumes MHA and FFN = 8/3·d"
            ),
            Count(
                "exact M, same conventions",
                r => r.ExactM,
                Units.Flops,
                $"M is off by {Units.Percent(a.DeepSeekMError)} ({a.Spec.Name}) and "
                    + $"{Units.Percent(b.DeepSeekMError)} ({b.Spec.Name})"
            ),
            Section("inference memory"),
            Count(
                $"KV cache per token ({bf16})",
                r => r.KvCacheBytesPerToken,
                Units.Bytes,
                "2 · layers · KV heads · head_dim · 2 bytes"
            ),
            Count($"KV cache per sequence of {a.SequenceLength:N0}", r => r.KvCacheBytesPerSequence, Units.Bytes),
            Count($"weights ({bf16})", r => r.WeightBytes[bf16], Units.Bytes),
            Count("weights (int4)", r => r.WeightBytes[DataType.Int4.Name], Units.Bytes),
            Count("weights + one sequence of KV", r => r.InferenceBytes, Units.Bytes),
            Section("training memory (one device, no parallelism)"),
            Count(
                "Adam state, 16 B/parameter",
                r => r.TrainingStateBytes,
                Units.Bytes,
                "bf16 weights and gradients, fp32 master weights and two moments"
            ),
            Count(
                "activations per layer, no recomputation",
                r => r.ActivationsPerLayer.None,
                Units.Bytes,
                "Korthikanti et al.: s·b·h·(34 + 5·a·s/h), b = 1"
            ),
            Count("activations per layer, selective", r => r.ActivationsPerLayer.Selective, Units.Bytes, "s·b·h·34"),
            Count("activations per layer, full recomputation", r => r.ActivationsPerLayer.Full, Units.Bytes, "2·s·b·h"),
            Count("state + all layers' selective activations", r => r.TrainingBytes, Units.Bytes),
        ];
    }

    /// <summary>The configuration table of the Architecture page.</summary>
    public static IReadOnlyList<ComparisonRow> ConfigRows(ArchitectureReport a, ArchitectureReport b)
    {
        ComparisonRow Field(
            string q,
            Func<ArchitectureReport, string> f,
            Func<ArchitectureReport, double>? ratio = null
        ) => new(q, f(a), "", f(b), "", ratio is null ? "" : Units.Ratio(ratio(b) / ratio(a)) + "×");
        return
        [
            Field("family", r => Core.Specs.DesignSummary.FamilyName(r.Spec.Family)),
            Field("layers", r => r.Spec.Layers.ToString(), r => r.Spec.Layers),
            Field("hidden size d", r => r.Spec.HiddenSize.ToString(), r => r.Spec.HiddenSize),
            Field(
                "FFN intermediate",
                r =>
                    $"{r.Spec.IntermediateSize} ({Units.Ratio((double)r.Spec.IntermediateSize / r.Spec.HiddenSize)}·d)",
                r => r.Spec.IntermediateSize
            ),
            Field("attention heads", r => r.Spec.AttentionHeads.ToString(), r => r.Spec.AttentionHeads),
            Field("KV heads", r => $"{r.Spec.KeyValueHeads} ({r.Spec.AttentionKind})", r => r.Spec.KeyValueHeads),
            Field("head_dim", r => r.Spec.HeadDim.ToString(), r => r.Spec.HeadDim),
            Field("vocabulary", r => r.Spec.VocabularySize.ToString("N0"), r => r.Spec.VocabularySize),
            Field("context length", r => r.Spec.ContextLength.ToString("N0"), r => r.Spec.ContextLength),
            Field("RoPE theta", r => r.Spec.RopeTheta.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
            Field("RMSNorm eps", r =>
                r.Spec.NormEpsilon.ToString("0.##E+0", System.Globalization.CultureInfo.InvariantCulture)
                    .ToLowerInvariant()
            ),
            Field("norm placement", r => r.Spec.NormPlacement switch
                {
                    Core.Specs.NormPlacement.Pre => "pre-norm",
                    Core.Specs.NormPlacement.Post => "post-norm",
                    _ => "on branch outputs",
                }),
            Field("FFN", r => r.Spec.FfnName),
            Field("tied embeddings", r => r.Spec.TiedEmbeddings ? "yes" : "no"),
            Field("design", r => Core.Specs.DesignSummary.Features(r.Spec)),
        ];
    }
}
