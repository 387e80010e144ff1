using Explorer.Core.Accounting;
using Explorer.Core.Pipeline;

namespace Explorer.Core.Parallel;

/// <summary>
/// Which communication runs behind compute, as Megatron-Core runs it (its flags): the data-parallel gradient
/// reduction bucket by bucket during the backward (<c>--overlap-grad-reduce</c>); the distributed optimizer's gather of
/// the updated weights during the next forward (<c>--overlap-param-gather</c>, which needs both of those); the
/// tensor-parallel collectives pipelined with the GEMMs they feed (<c>--tp-comm-overlap</c>, which needs sequence
/// parallelism).
/// </summary>
public sealed record CommOverlap(bool GradReduce = false, bool ParamGather = false, bool TensorParallel = false)
{
    public static CommOverlap None { get; } = new();

    public bool Any => GradReduce || ParamGather || TensorParallel;

    public string Describe() =>
        !Any
            ? ""
            : " overlap="
                + string.Join(
                    '+',
                    new[] { (GradReduce, "grad-reduce"), (ParamGather, "param-gather"), (TensorParallel, "tp-comm") }
                        .Where(x => x.Item1)
                        .Select(x => x.Item2)
                );
}

/// <summary>
/// How a training step is spread over t·c·p·d GPUs: tensor parallel t (optionally with sequence parallelism), context
/// parallel c (each sequence split over c GPUs, attention by a ring of its key/value chunks), pipeline p with v model
/// chunks per device, data parallel d with a ZeRO stage, and the batch.
/// </summary>
public sealed record ParallelConfig
{
    public int Tensor { get; init; } = 1;

    /// <summary>Context parallel c: each sequence split into 2c chunks over c GPUs (Megatron-LM's
    /// --context-parallel-size).</summary>
    public int Context { get; init; } = 1;
    public int Pipeline { get; init; } = 1;
    public int Data { get; init; } = 1;

    /// <summary>Model chunks per pipeline device (interleaved schedule only).</summary>
    public int VirtualStages { get; init; } = 1;

    /// <summary>Sequences per micro-batch b.</summary>
    public int MicroBatch { get; init; } = 1;

    /// <summary>Sequences per optimizer step B.</summary>
    public int GlobalBatch { get; init; } = 1;
    public bool SequenceParallel { get; init; }
    public Recomputation Recompute { get; init; } = Recomputation.None;

    /// <summary>0: replicated optimizer; 1: optimizer state sharded (as Megatron's distributed optimizer); 2: also
    /// gradients; 3: also weights.</summary>
    public int Zero { get; init; } = 1;
    public ScheduleKind Schedule { get; init; } = ScheduleKind.OneFOneB;

    /// <summary>Communication hidden behind compute (none by default, as in the SC21 runs the estimator is fitted
    /// on).</summary>
    public CommOverlap Overlap { get; init; } = CommOverlap.None;

    /// <summary>
    /// The attention core runs as one fused causal kernel (FlashAttention, or cuDNN's fused attention): it skips the
    /// masked half of the s × s scores and keeps none of them for the backward, only the softmax's row statistics.
    /// Megatron-Core's default (its auto backend picks one of the two), and torchtitan's
    /// (scaled_dot_product_attention).
    /// False: the unfused path of 2021–22 Megatron-LM, full s × s batched matmuls with the scores, their softmax and
    /// dropout mask kept (Megatron-LM's <c>--attention-backend unfused</c>), as in the SC21 runs the estimator is
    /// fitted on.
    /// </summary>
    public bool FlashAttention { get; init; } = true;

    public int Gpus => Tensor * Context * Pipeline * Data;

    /// <summary>Micro-batches each pipeline runs per step: B / (d·b).</summary>
    public int MicroBatches => GlobalBatch / (Data * MicroBatch);

    public string Describe() =>
        $"t={Tensor}{(SequenceParallel ? "+SP" : "")}{(Context > 1 ? $" c={Context}" : "")} "
        + $"p={Pipeline}{(VirtualStages > 1 ? $"×v{VirtualStages}" : "")} d={Data} b={MicroBatch} "
        + $"m={MicroBatches} {ScheduleNames.Name(Schedule)} "
        + $"recompute={Recompute.ToString().ToLowerInvariant()} zero={Zero}{Overlap.Describe()}"
        + (FlashAttention ? "" : " attention=unfused");

    /// <summary>Reads an attention backend by Megatron-LM's names: flash (a fused causal kernel) or unfused.</summary>
    public static bool ParseAttentionBackend(string text) =>
        text.Trim().ToLowerInvariant() switch
        {
            "flash" => true,
            "unfused" => false,
            _ => throw new ArgumentException($"Unknown attention backend '{text}'. Use flash or unfused."),
        };

    public static Recomputation ParseRecompute(string text) =>
        text.Trim().ToLowerInvariant() switch
        {
            "none" => Recomputation.None,
            "selective" => Recomputation.Selective,
            "full" => Recomputation.Full,
            _ => throw new ArgumentException($"Unknown recomputation '{text}'. Use none, selective or full."),
        };
}
