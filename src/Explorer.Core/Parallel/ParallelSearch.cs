using Explorer.Core.Accounting;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Parallel;

/// <summary>The outcome of a search: the configurations that fit, fastest first, and how many were looked at.</summary>
public sealed record SearchResult(
    IReadOnlyList<ParallelEstimate> Fitting,
    int Considered,
    int Valid,
    IReadOnlyList<string> Problems
);

/// <summary>
/// Every way to run a model on N GPUs at a global batch: t dividing the heads and the KV heads within a node, context
/// parallel c splitting a long sequence into 2c chunks (up to <see cref="MaxContext"/>, at least
/// <see cref="MinTokensPerContextGpu"/> tokens per GPU), p up to the layers, d the rest, micro-batch sizes dividing the
/// batch, 1F1B / interleaved / ZB-H1, sequence parallelism, recomputation and ZeRO stage; those that fit in memory
/// ranked by predicted step time.
/// </summary>
public static class ParallelSearch
{
    public static readonly int[] MicroBatchSizes = [1, 2, 4, 8, 16];

    /// <summary>Most virtual stages per device tried.</summary>
    public const int MaxVirtualStages = 8;

    /// <summary>Most context-parallel GPUs per sequence tried (Llama 3 trained its long-context phase with
    /// 16).</summary>
    public const int MaxContext = 16;

    /// <summary>
    /// Fewest tokens of a sequence per context-parallel GPU the search tries (Llama 3's 128K over 16 GPUs: 8K each;
    /// Megatron-LM's examples: 8K over 2). Context parallelism is for long sequences: the estimator's kernel efficiency
    /// does not yet fall with fewer tokens per GPU, so shorter chunks would look cheaper than they run. A configuration
    /// given explicitly is estimated at any c.
    /// </summary>
    public const int MinTokensPerContextGpu = 4096;

    /// <param name="overlap">The communication overlap the run will use; each candidate takes what its own settings
    /// allow (the weight gather only with ZeRO-1, the tensor-parallel overlap only with sequence parallelism).</param>
    /// <param name="flashAttention">Whether the run's attention is a fused causal kernel (<see
    /// cref="ParallelConfig.FlashAttention"/>).</param>
    public static SearchResult Search(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        int gpus,
        int globalBatch,
        Efficiency? efficiency = null,
        CommOverlap? overlap = null,
        bool flashAttention = true
    )
    {
        var problems = new List<string>(cluster.Problems());
        if (gpus is < 1 or > ParallelRules.MaxGpus)
            problems.Add($"GPUs: {gpus}; use 1 to {ParallelRules.MaxGpus:N0}.");
        if (globalBatch is < 1 or > ParallelRules.MaxGlobalBatch)
            problems.Add($"Global batch: {globalBatch}; use 1 to {ParallelRules.MaxGlobalBatch:N0} sequences.");
        if (sequenceLength < 1 || sequenceLength > SpecValidator.MaxContextLength)
            problems.Add(
                $"Sequence length {sequenceLength}; it must be between 1 and {SpecValidator.MaxContextLength:N0}."
            );
        problems.AddRange(SpecValidator.Validate(spec).Select(e => e.ToString()));
        if (problems.Count > 0)
            return new SearchResult([], 0, 0, problems);

        var fitting = new List<ParallelEstimate>();
        int considered = 0,
            valid = 0;
        foreach (
            var config in Candidates(
                spec,
                sequenceLength,
                cluster,
                gpus,
                globalBatch,
                overlap ?? CommOverlap.None,
                flashAttention
            )
        )
        {
            considered++;
            var estimate = ParallelEstimator.Estimate(spec, sequenceLength, cluster, config, efficiency);
            if (!estimate.Valid)
                continue;
            valid++;
            if (estimate.Fits)
                fitting.Add(estimate);
        }
        // Fastest first; among equally fast, the one that leaves the most memory free.
        var ranked = fitting.OrderBy(e => e.StepSeconds).ThenBy(e => e.Memory!.Total).ToArray();
        return new SearchResult(ranked, considered, valid, []);
    }

    private static IEnumerable<ParallelConfig> Candidates(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        int gpus,
        int globalBatch,
        CommOverlap overlap,
        bool flashAttention
    )
    {
        foreach (
            var t in Divisors(gpus)
                .Where(t => t <= cluster.GpusPerNode && spec.AttentionHeads % t == 0 && spec.KeyValueHeads % t == 0)
        )
        foreach (
            var c in Divisors(gpus / t)
                .Where(c =>
                    c == 1
                    || (
                        c <= MaxContext && sequenceLength % (2 * c) == 0 && sequenceLength / c >= MinTokensPerContextGpu
                    )
                )
        )
        foreach (var p in Divisors(gpus / t / c).Where(p => p <= spec.Layers))
        {
            var d = gpus / t / c / p;
            foreach (var b in MicroBatchSizes.Where(b => globalBatch % ((long)d * b) == 0))
            {
                var m = globalBatch / (d * b);
                foreach (var (schedule, v) in Schedules(spec, p, m))
                foreach (var sp in t > 1 ? new[] { false, true } : [false])
                foreach (var recompute in new[] { Recomputation.None, Recomputation.Selective, Recomputation.Full })
                foreach (var zero in p == 1 ? new[] { 0, 1, 2, 3 } : [0, 1])
                    yield return new ParallelConfig
                    {
                        Tensor = t,
                        Context = c,
                        Pipeline = p,
                        Data = d,
                        VirtualStages = v,
                        MicroBatch = b,
                        GlobalBatch = globalBatch,
                        SequenceParallel = sp,
                        Recompute = recompute,
                        Zero = zero,
                        Schedule = schedule,
                        Overlap = overlap with
                        {
                            ParamGather = overlap.ParamGather && overlap.GradReduce && zero == 1,
                            TensorParallel = overlap.TensorParallel && sp,
                        },
                        FlashAttention = flashAttention,
                    };
            }
        }
    }

    private static IEnumerable<(ScheduleKind, int)> Schedules(ModelSpec spec, int p, int m)
    {
        yield return (ScheduleKind.OneFOneB, 1);
        if (p == 1)
            yield break;
        yield return (ScheduleKind.ZeroBubbleH1, 1);
        for (var v = 2; v <= MaxVirtualStages; v++)
        {
            if (spec.Layers % (p * v) == 0 && m % p == 0)
                yield return (ScheduleKind.Interleaved1F1B, v);
            if (p * v <= spec.Layers && ScheduleNames.Rule(ScheduleKind.InterleavedZeroBubble, p, m) is null)
                yield return (ScheduleKind.InterleavedZeroBubble, v);
        }
        // The V schedules torchtitan runs; DualPipe has no engine among the exports and is planned by hand.
        if (2 * p <= spec.Layers)
        {
            yield return (ScheduleKind.ZeroBubbleV, 2);
            if (ScheduleNames.Rule(ScheduleKind.DualPipeV, p, m) is null)
                yield return (ScheduleKind.DualPipeV, 2);
        }
    }

    private static IEnumerable<int> Divisors(int n)
    {
        for (var i = 1; i <= n; i++)
            if (n % i == 0)
                yield return i;
    }
}
