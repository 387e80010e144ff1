namespace Explorer.Core.Pipeline;

/// <summary>The outcome of partitioning: a plan, or the rule that refuses the request.</summary>
public sealed record PartitionResult(StagePlan? Plan, string? Refusal)
{
    public bool Succeeded => Plan is not null;

    public static PartitionResult Refuse(string why) => new(null, why);

    public static PartitionResult Of(StagePlan plan) => new(plan, null);
}

/// <summary>Splits a sequence of units into contiguous, non-empty stages.</summary>
public interface IPartitioner
{
    string Name { get; }
    PartitionResult Partition(IReadOnlyList<PipelineUnit> units, int stages);
}

internal static class PartitionChecks
{
    public static string? Check(IReadOnlyList<PipelineUnit> units, int stages)
    {
        if (units.Count == 0)
            return "There are no units to split.";
        if (stages < 1)
            return $"Stages p = {stages}: use at least 1.";
        if (stages > units.Count)
            return $"Stages p = {stages} is more than the {units.Count} units: every stage needs at least one unit.";
        return null;
    }
}
