using Explorer.Core.Specs;

namespace Explorer.Core.Accounting;

/// <summary>How a depth-for-width trade is made at a fixed parameter budget.</summary>
public enum ShapeFamily
{
    /// <summary>Keep d_model and attention; the FFN width absorbs the budget (LLaMA-2-70B vs DeepSeek 67B).</summary>
    FixedHidden,

    /// <summary>Keep the FFN/d ratio, head_dim and KV sharing; d_model absorbs the budget.</summary>
    FixedAspect,
}

/// <summary>One alternative shape and what it changes.</summary>
public sealed record ShapeAlternative(
    ModelSpec Spec,
    long Parameters,
    double BudgetDeviation,
    long ForwardFlopsPerToken,
    long KvCacheBytesPerToken,
    double HeadLayerEquivalents,
    IReadOnlyList<EvenSplit> Splits,
    IReadOnlyList<EvenSplit> SplitsWithHead
);

/// <summary>Alternative depths for a parameter budget: the choice the DeepSeek LLM paper made (§2.2).</summary>
public static class ShapeAlternatives
{
    /// <summary>Depths tried by default: the presets' and their neighbours.</summary>
    public static IReadOnlyList<int> DefaultDepths { get; } = [16, 24, 30, 32, 40, 48, 60, 64, 80, 95, 96, 120];

    // FFN widths and hidden sizes are rounded the way released models round them.
    private const int FfnMultiple = 256;

    public static IReadOnlyList<ShapeAlternative> For(
        ModelSpec baseSpec,
        long parameterBudget,
        ShapeFamily family,
        IEnumerable<int>? depths = null,
        int sequenceLength = 4096
    )
    {
        SpecValidator.EnsureValid(baseSpec);
        if (parameterBudget < 1)
            throw new ArgumentOutOfRangeException(
                nameof(parameterBudget),
                parameterBudget,
                "The parameter budget must be positive."
            );
        var result = new List<ShapeAlternative>();
        foreach (var layers in (depths ?? DefaultDepths).Append(baseSpec.Layers).Distinct().Order())
        {
            if (layers < 1 || layers > SpecValidator.MaxLayers)
                continue;
            var spec =
                family == ShapeFamily.FixedHidden
                    ? WithFfnForBudget(baseSpec, layers, parameterBudget)
                    : WithHiddenForBudget(baseSpec, layers, parameterBudget);
            if (spec is null || SpecValidator.Validate(spec).Count > 0)
                continue;
            var report = ArchitectureReport.Create(spec, Math.Min(sequenceLength, spec.ContextLength));
            var headLayers = (int)Math.Round(report.LayerEquivalents.HeadByParameters);
            result.Add(
                new ShapeAlternative(
                    spec,
                    report.Parameters.Total,
                    (double)(report.Parameters.Total - parameterBudget) / parameterBudget,
                    report.Flops.ForwardPerToken,
                    report.KvCacheBytesPerToken,
                    report.LayerEquivalents.HeadByParameters,
                    EvenSplit.CommonStageCounts.Select(p => new EvenSplit(layers, p)).ToArray(),
                    EvenSplit.CommonStageCounts.Select(p => new EvenSplit(layers + headLayers, p)).ToArray()
                )
            );
        }
        return result;
    }

    private static ModelSpec? WithFfnForBudget(ModelSpec b, int layers, long budget)
    {
        long d = b.HiddenSize;
        // Everything but the FFN as the base has it: attention with its head_dim, biases and q/k norms, the norms.
        var p = ParameterBreakdown.Of(b);
        long fixedParams = p.Embedding + p.LmHead + p.FinalNorm;
        long attentionAndNorms = p.PerLayer.Total - p.PerLayer.Ffn;
        int matrices = b.FfnKind == FfnKind.SwiGlu ? 3 : 2;
        double perLayer = (double)(budget - fixedParams) / layers;
        double ffn = (perLayer - attentionAndNorms) / (matrices * d);
        var rounded = (int)Math.Round(ffn / FfnMultiple) * FfnMultiple;
        return rounded < FfnMultiple
            ? null
            : b with
            {
                Name = $"{layers}L d{d} ffn{rounded}",
                Layers = layers,
                IntermediateSize = rounded,
            };
    }

    private static ModelSpec? WithHiddenForBudget(ModelSpec b, int layers, long budget)
    {
        // Per layer ≈ c·d² with c = 2 (q, o) + 2/g (k, v) + matrices·r, r = ffn/d; embeddings add V·d (twice if
        // untied).
        double g = b.QueriesPerKeyValueHead,
            r = (double)b.IntermediateSize / b.HiddenSize;
        int matrices = b.FfnKind == FfnKind.SwiGlu ? 3 : 2;
        double c = layers * (2 + 2 / g + matrices * r);
        double lin = b.VocabularySize * (b.TiedEmbeddings ? 1.0 : 2.0);
        double d = (-lin + Math.Sqrt(lin * lin + 4 * c * budget)) / (2 * c);
        int headDim = b.HeadDim;
        int unit = headDim * b.QueriesPerKeyValueHead; // whole KV groups of whole heads
        int hidden = (int)Math.Round(d / unit) * unit;
        if (hidden < unit)
            return null;
        int heads = hidden / headDim;
        int ffnSize = (int)Math.Round(r * hidden / FfnMultiple) * FfnMultiple;
        return b with
        {
            Name = $"{layers}L d{hidden} ffn{ffnSize}",
            Layers = layers,
            HiddenSize = hidden,
            IntermediateSize = Math.Max(FfnMultiple, ffnSize),
            AttentionHeads = heads,
            KeyValueHeads = heads / b.QueriesPerKeyValueHead,
        };
    }
}
