using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Parallel;

/// <summary>The rules a parallel configuration must follow, each broken one named with its numbers.</summary>
public static class ParallelRules
{
    /// <summary>Most GPUs a plan may ask for.</summary>
    public const int MaxGpus = 1 << 20;

    /// <summary>Most sequences in one step.</summary>
    public const int MaxGlobalBatch = 1 << 24;

    /// <summary>What Megatron-LM's validate_args says of the overlap settings; null when they are allowed.</summary>
    public static string? Overlap(ParallelConfig c)
    {
        if (c.Overlap.ParamGather && (c.Zero != 1 || !c.Overlap.GradReduce))
            return "Overlapping the weight gather (--overlap-param-gather) needs the distributed optimizer "
                + "(ZeRO-1) and --overlap-grad-reduce.";
        if (c.Overlap.TensorParallel && !c.SequenceParallel)
            return "Tensor-parallel communication overlaps its GEMMs (--tp-comm-overlap) only with sequence "
                + "parallelism.";
        return null;
    }

    public static IReadOnlyList<string> Check(ModelSpec spec, int sequenceLength, Cluster cluster, ParallelConfig c)
    {
        var broken = new List<string>(cluster.Problems());
        foreach (
            var (name, value) in new[]
            {
                ("Tensor parallel t", c.Tensor),
                ("Context parallel c", c.Context),
                ("Pipeline parallel p", c.Pipeline),
                ("Data parallel d", c.Data),
                ("Virtual stages v", c.VirtualStages),
                ("Micro-batch size b", c.MicroBatch),
                ("Global batch B", c.GlobalBatch),
            }
        )
            if (value < 1)
                broken.Add($"{name} is {value}; it must be at least 1.");
        if (broken.Count > 0)
            return broken;
        if ((long)c.Tensor * c.Context * c.Pipeline * c.Data > MaxGpus)
            broken.Add($"t·c·p·d = {(long)c.Tensor * c.Context * c.Pipeline * c.Data:N0} GPUs; at most {MaxGpus:N0}.");
        if (c.Context > 1 && sequenceLength % (2L * c.Context) != 0)
            broken.Add(
                $"Context parallelism splits each sequence into 2c = {2L * c.Context} chunks (two per "
                    + "GPU, so that causal attention is balanced, "
                    + $"as Megatron-LM and torchtitan do): the sequence length {sequenceLength} is not a "
                    + $"multiple of {2L * c.Context}."
            );
        if (c.GlobalBatch > MaxGlobalBatch)
            broken.Add($"Global batch {c.GlobalBatch:N0}; at most {MaxGlobalBatch:N0} sequences.");
        if (sequenceLength < 1 || sequenceLength > SpecValidator.MaxContextLength)
            broken.Add(
                $"Sequence length {sequenceLength}; it must be between 1 and {SpecValidator.MaxContextLength:N0}."
            );
        if (spec.AttentionHeads % c.Tensor != 0)
            broken.Add($"t = {c.Tensor} does not divide the {spec.AttentionHeads} attention heads.");
        if (spec.KeyValueHeads % c.Tensor != 0)
            broken.Add($"t = {c.Tensor} does not divide the {spec.KeyValueHeads} key/value heads.");
        if (c.Tensor > cluster.GpusPerNode)
            broken.Add(
                $"t = {c.Tensor} spans more than one node of {cluster.GpusPerNode} GPUs; tensor "
                    + "parallelism needs NVLink."
            );
        if (c.Pipeline > spec.Layers)
            broken.Add($"p = {c.Pipeline} is more stages than the {spec.Layers} layers.");
        if ((long)c.Data * c.MicroBatch > 0 && c.GlobalBatch % ((long)c.Data * c.MicroBatch) != 0)
            broken.Add(
                $"Global batch {c.GlobalBatch} is not a multiple of d·b = {c.Data}·{c.MicroBatch} = "
                    + $"{(long)c.Data * c.MicroBatch}."
            );
        if (c.SequenceParallel && c.Tensor == 1)
            broken.Add("Sequence parallelism splits along t: it needs t > 1.");
        if (c.Zero is < 0 or > 3)
            broken.Add($"ZeRO stage {c.Zero}; use 0, 1, 2 or 3.");
        if (c.Zero >= 2 && c.Pipeline > 1)
            broken.Add(
                $"ZeRO-{c.Zero} shards gradients across the micro-batches a pipeline accumulates; "
                    + "DeepSpeed and Megatron-LM allow only ZeRO-1 (the distributed optimizer) with p > 1."
            );
        if (Overlap(c) is { } overlap)
            broken.Add(overlap);
        var schedule = ScheduleNames.Name(c.Schedule);
        if (SchedulePlacement.UsesVirtualStages(c.Schedule))
        {
            if (c.VirtualStages < 2)
                broken.Add($"The {schedule} schedule needs v ≥ 2 model chunks per device; v = {c.VirtualStages}.");
            if (c.Pipeline < 2)
                broken.Add($"The {schedule} schedule needs p ≥ 2.");
            if (c.Schedule == ScheduleKind.Interleaved1F1B && spec.Layers % ((long)c.Pipeline * c.VirtualStages) != 0)
                broken.Add(
                    $"Interleaving needs the {spec.Layers} layers to divide into p·v = "
                        + $"{(long)c.Pipeline * c.VirtualStages} equal chunks."
                );
            if (c.Schedule == ScheduleKind.InterleavedZeroBubble && (long)c.Pipeline * c.VirtualStages > spec.Layers)
                broken.Add($"p·v = {(long)c.Pipeline * c.VirtualStages} chunks is more than the {spec.Layers} layers.");
        }
        else if (SchedulePlacement.IsV(c.Schedule))
        {
            if (c.VirtualStages != 2)
                broken.Add(
                    $"The {schedule} schedule places two chunks per device in a V (stages r and 2p − 1 "
                        + $"− r); v = {c.VirtualStages}, use 2."
                );
            if (c.Pipeline < 2)
                broken.Add($"The {schedule} schedule needs p ≥ 2.");
            if (2L * c.Pipeline > spec.Layers)
                broken.Add($"The V's 2p = {2L * c.Pipeline} stages are more than the {spec.Layers} layers.");
        }
        else if (c.VirtualStages != 1)
            broken.Add($"v = {c.VirtualStages} model chunks per device need an interleaved or V schedule.");
        if (
            (c.Pipeline > 1 || c.Schedule == ScheduleKind.DualPipe)
            && c.Data * c.MicroBatch > 0
            && c.GlobalBatch % ((long)c.Data * c.MicroBatch) == 0
            && ScheduleNames.Rule(c.Schedule, c.Pipeline, c.MicroBatches) is { } rule
        )
            broken.Add(rule);
        return broken;
    }
}
