using Explorer.Core.Specs;

namespace Explorer.Core.Pipeline;

/// <summary>For one stage count: the best achievable imbalance and what Megatron's uniform split gives.</summary>
public sealed record DivisibilityRow(
    int Stages,
    double OptimalImbalance,
    double? UniformImbalance,
    double? UniformPlusOneImbalance,
    double? UniformPlusTwoImbalance
);

/// <summary>
/// What "30 and 95 layers facilitate pipeline partitioning" means, in numbers: for p = 1…maxStages, the slowest
/// stage over the mean with the embedding, head and loss costed, for the optimal contiguous split and for
/// Megatron-LM's uniform split: plain, counting the loss stage as one more layer (L + 1, lighter last stage), and
/// counting the embedding and the loss (L + 2); null where Megatron refuses.
/// </summary>
public static class DivisibilityAnalysis
{
    public static IReadOnlyList<DivisibilityRow> Compute(ModelSpec spec, CostSettings settings, int maxStages = 32)
    {
        var units = CostModel.Units(spec, settings);
        var rows = new List<DivisibilityRow>();
        for (var p = 1; p <= Math.Min(maxStages, units.Count); p++)
        {
            var optimal = BalancedPartitioner.Optimal().Partition(units, p).Plan!;
            var uniform = new UniformPartitioner().Partition(units, p);
            var plusOne = new UniformPartitioner(AccountForLoss: true).Partition(units, p);
            var plusTwo = new UniformPartitioner(AccountForEmbedding: true, AccountForLoss: true).Partition(units, p);
            rows.Add(
                new DivisibilityRow(
                    p,
                    optimal.Imbalance,
                    uniform.Plan?.Imbalance,
                    plusOne.Plan?.Imbalance,
                    plusTwo.Plan?.Imbalance
                )
            );
        }
        return rows;
    }
}
