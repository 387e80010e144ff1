using Explorer.Core.Formatting;

namespace Explorer.Core.Accounting;

/// <summary>One comparison between two specs, stated as a sentence a reader takes in at a glance.</summary>
public sealed record ComparisonFact(string Title, string Detail);

/// <summary>The differences between two designs that matter most, in words and ratios.</summary>
public static class SpecComparison
{
    public static IReadOnlyList<ComparisonFact> Facts(ArchitectureReport a, ArchitectureReport b)
    {
        var facts = new List<ComparisonFact>();
        string A = a.Spec.Name,
            B = b.Spec.Name;
        double paramRatio = (double)b.Parameters.Total / a.Parameters.Total;
        double kvRatio = (double)b.KvCacheBytesPerToken / a.KvCacheBytesPerToken;

        facts.Add(
            new(
                "Depth and width",
                $"{B} has {Units.Ratio((double)b.Spec.Layers / a.Spec.Layers)}× the layers "
                    + $"({b.Spec.Layers} vs {a.Spec.Layers}) "
                    + $"and {Units.Ratio((double)b.Spec.HiddenSize / a.Spec.HiddenSize)}× the width (d = "
                    + $"{b.Spec.HiddenSize} vs {a.Spec.HiddenSize}) "
                    + $"for {Units.Ratio(paramRatio)}× the parameters."
            )
        );

        if (kvRatio < 1 != paramRatio < 1)
        {
            var (small, large) = kvRatio < 1 ? (b, a) : (a, b);
            facts.Add(
                new(
                    "KV cache per token",
                    $"{small.Spec.Name} caches {Units.Bytes(small.KvCacheBytesPerToken)} per token "
                        + $"against {Units.Bytes(large.KvCacheBytesPerToken)} "
                        + $"for {large.Spec.Name}, although it is the "
                        + $"{(small.Parameters.Total > large.Parameters.Total ? "larger" : "smaller")} "
                        + "model: "
                        + $"{small.Spec.AttentionKind} keeps {small.Spec.KeyValueHeads} KV heads of "
                        + $"{small.Spec.AttentionHeads}."
                )
            );
        }
        else
        {
            facts.Add(
                new(
                    "KV cache per token",
                    $"{B} caches {Units.Bytes(b.KvCacheBytesPerToken)} per token, "
                        + $"{Units.Ratio(kvRatio)}× {A}'s {Units.Bytes(a.KvCacheBytesPerToken)} "
                        + $"({b.Spec.AttentionKind} vs {a.Spec.AttentionKind})."
                )
            );
        }

        foreach (var r in new[] { a, b })
        {
            if (Math.Abs(r.DeepSeekMError) >= 0.02)
                facts.Add(
                    new(
                        $"DeepSeek's M for {r.Spec.Name}",
                        $"M = 72·n·d² + 12·n·d·l is {Units.Percent(r.DeepSeekMError)} off the exact count "
                            + $"({Units.Flops(r.DeepSeekM)} vs {Units.Flops(r.ExactM)} per token): it "
                            + "assumes MHA and an FFN of 8/3·d"
                            + (
                                r.Spec.IsGroupedQuery
                                    ? $", but {r.Spec.Name} shares KV heads {r.Spec.QueriesPerKeyValueHead}:1."
                                    : "."
                            )
                    )
                );
        }

        foreach (var r in new[] { a, b })
        {
            var head = (int)Math.Round(r.LayerEquivalents.HeadByParameters);
            if (head < 1)
                continue;
            var even = EvenSplit.CommonStageCounts.Where(p => new EvenSplit(r.Spec.Layers + head, p).IsEven).ToArray();
            var evenBare = EvenSplit.CommonStageCounts.Where(p => new EvenSplit(r.Spec.Layers, p).IsEven).ToArray();
            facts.Add(
                new(
                    $"Pipeline split of {r.Spec.Name}",
                    $"Its LM head weighs {Units.Ratio(r.LayerEquivalents.HeadByParameters)} layers; counted as {head}, "
                        + $"{r.Spec.Layers} + {head} = {r.Spec.Layers + head} layers split evenly into "
                        + (even.Length > 0 ? string.Join(", ", even) : "none of 2, 4, 8, 16")
                        + " stages"
                        + (
                            evenBare.Length < even.Length
                                ? $" (the {r.Spec.Layers} layers alone: "
                                    + $"{(evenBare.Length > 0 ? string.Join(", ", evenBare) : "none")})."
                                : "."
                        )
                )
            );
        }
        return facts;
    }
}
