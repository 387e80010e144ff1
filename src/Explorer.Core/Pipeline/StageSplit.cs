using Explorer.Core.Specs;

namespace Explorer.Core.Pipeline;

/// <summary>
/// The split the live pages show for a model, a stage count and a sequence length: the optimal (slowest stage
/// minimal) split of the analytic unit costs, embedding, head and loss costed like everything else. The Layers and
/// Attention pages shade and name its stages, and their link to the Pipeline page carries its boundaries.
/// </summary>
public static class StageSplit
{
    /// <summary>The split, or null when it cannot be made (fewer units than stages, or fewer than 2 stages).</summary>
    public static StagePlan? Optimal(ModelSpec spec, int stages, int sequenceLength)
    {
        if (stages < 2 || stages > UnitNumbering.Count(spec.Layers))
            return null;
        var units = CostModel.Units(spec, new CostSettings { SequenceLength = Math.Max(2, sequenceLength) });
        return BalancedPartitioner.Optimal().Partition(units, stages).Plan;
    }

    /// <summary>The stage holding 0-based layer <paramref name="layer"/>.</summary>
    public static Stage StageOfLayer(StagePlan plan, int layer) =>
        plan.Stages.First(s =>
            s.FirstUnit <= UnitNumbering.OfLayer(layer) && UnitNumbering.OfLayer(layer) <= s.LastUnit
        );

    /// <summary>The 1-based layers a stage holds (its embedding, head and loss units left out); empty when it holds
    /// none.</summary>
    public static (int First, int Last) Layers(Stage stage, int layers) =>
        UnitNumbering.LayersIn(stage.FirstUnit, stage.LastUnit, layers);
}
