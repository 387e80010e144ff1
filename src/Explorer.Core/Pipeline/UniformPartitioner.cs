namespace Explorer.Core.Pipeline;

/// <summary>
/// Megatron-LM's split: equal numbers of decoder layers per stage, the embedding on the first stage and the head
/// and loss on the last. Options mirror its flags: <c>--account-for-embedding-in-pipeline-split</c> and
/// <c>--account-for-loss-in-pipeline-split</c> count those as one layer each, and
/// <c>--decoder-first/last-pipeline-num-layers</c> fix the ends. Refuses what Megatron refuses: the layers that
/// are dealt evenly must divide by the stages that share them.
/// </summary>
public sealed record UniformPartitioner(
    bool AccountForEmbedding = false,
    bool AccountForLoss = false,
    int? FirstStageLayers = null,
    int? LastStageLayers = null
) : IPartitioner
{
    public string Name => "uniform";

    public PartitionResult Partition(IReadOnlyList<PipelineUnit> units, int stages)
    {
        if (PartitionChecks.Check(units, stages) is { } problem)
            return PartitionResult.Refuse(problem);
        var layers = units.Select((u, i) => (u, i)).Where(x => x.u.Kind == UnitKind.Layer).Select(x => x.i).ToArray();
        if (layers.Length == 0)
            return PartitionResult.Refuse("Uniform splits count decoder layers, and there are none.");
        // Megatron's virtual layers: the decoder layers, plus one for the embedding and one for the loss if asked.
        var slots = layers.Length + (AccountForEmbedding ? 1 : 0) + (AccountForLoss ? 1 : 0);
        var perStage = new int[stages];
        if (FirstStageLayers is not null || LastStageLayers is not null)
        {
            if (AccountForEmbedding || AccountForLoss)
                return PartitionResult.Refuse(
                    "Megatron-LM does not combine --decoder-first/last-pipeline-num-layers with "
                        + "--account-for-embedding/loss-in-pipeline-split."
                );
            int first = FirstStageLayers ?? -1,
                last = LastStageLayers ?? -1;
            var fixedStages = (first >= 0 ? 1 : 0) + (last >= 0 ? 1 : 0);
            if (fixedStages > stages || (stages == 1 && fixedStages > 0))
                return PartitionResult.Refuse(
                    $"Fixing the first/last stage's layers needs at least {fixedStages + 1} stages; p = {stages}."
                );
            if (first == 0 || last == 0)
                return PartitionResult.Refuse("A fixed first or last stage needs at least one layer.");
            var rest = layers.Length - Math.Max(first, 0) - Math.Max(last, 0);
            var middle = stages - fixedStages;
            if (rest < 0 || (middle == 0 && rest != 0) || (middle > 0 && (rest % middle != 0 || rest / middle == 0)))
                return PartitionResult.Refuse(
                    $"Megatron-LM requires the {rest} layers left after fixing the ends to divide "
                        + $"evenly over the other {middle} stages."
                );
            for (var i = 0; i < stages; i++)
                perStage[i] = middle == 0 ? 0 : rest / middle;
            if (first >= 0)
                perStage[0] = first;
            if (last >= 0)
                perStage[^1] = last;
        }
        else
        {
            if (slots % stages != 0)
                return PartitionResult.Refuse(
                    $"Megatron-LM requires the number of layers ({Describe(layers.Length)} = {slots}) "
                        + $"to be divisible by the pipeline size p = {stages}."
                );
            Array.Fill(perStage, slots / stages);
            if (AccountForEmbedding)
                perStage[0]--;
            if (AccountForLoss)
                perStage[^1]--;
            if (
                perStage.Any(n => n < 0)
                || (stages > 1 && perStage.Any(n => n == 0) && !(AccountForEmbedding || AccountForLoss))
            )
                return PartitionResult.Refuse($"p = {stages} leaves a stage without layers.");
        }
        // Stage i starts at its first decoder layer; the embedding goes with stage 0, the head and loss with the last.
        var firstUnits = new int[stages];
        var next = 0;
        for (var i = 0; i < stages; i++)
        {
            firstUnits[i] = i == 0 ? 0 : (next < layers.Length ? layers[next] : units.Count - 1);
            next += perStage[i];
        }
        try
        {
            return PartitionResult.Of(new StagePlan(units, firstUnits, Name));
        }
        catch (ArgumentException e)
        {
            return PartitionResult.Refuse(e.Message);
        }
    }

    private string Describe(int layers) =>
        $"{layers} decoder layers"
        + (AccountForEmbedding ? " + 1 for the embedding" : "")
        + (AccountForLoss ? " + 1 for the loss" : "");
}
