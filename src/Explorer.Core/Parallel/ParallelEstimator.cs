using Explorer.Core.Accounting;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Parallel;

/// <summary>
/// Predicts one training step of a decoder under a parallel configuration: time (compute split by t, tensor-parallel
/// collectives, pipeline transfers and bubble, exposed data-parallel reduction) and memory per GPU (weights,
/// gradients and optimizer state by ZeRO stage, activations after Korthikanti et al. 2022, in-flight micro-batches).
/// FLOPs are counted as Megatron-LM counts them (attention scores over the full s × s, bf16 everywhere, Adam with an
/// fp32 master copy), so that its published TFLOP/s can be reproduced; time follows what the kernels run (a fused
/// causal attention kernel skips the masked half of the scores).
/// </summary>
public static class ParallelEstimator
{
    private const int Bf16 = 2;

    public static ParallelEstimate Estimate(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig config,
        Efficiency? efficiency = null
    )
    {
        var e = efficiency ?? Efficiency.Default;
        var violations = ParallelRules.Check(spec, sequenceLength, cluster, config);
        if (violations.Count > 0)
            return new ParallelEstimate(config, violations, null, null, cluster.Gpu.MemoryBytes, 0, 0, 0, 0, "invalid");

        var p = ParameterBreakdown.Of(spec);
        var k = LayerCosts.Of(spec, p, sequenceLength, cluster, config, e);
        double s = sequenceLength;
        int t = config.Tensor,
            c = config.Context,
            pp = config.Pipeline,
            d = config.Data,
            v = config.VirtualStages,
            m = config.MicroBatches;
        var layersOnStage = (spec.Layers + pp - 1) / pp;
        var forward = k.Forward;
        var layerHardware = 3 * forward + k.Recomputed;
        var headFlops = k.HeadFlops;
        // A GPU of the t·c group runs 1/(t·c) of each layer's work: its heads' share of its s/c tokens.
        var layerSeconds = layerHardware / (t * c) / k.Rate;
        var headSeconds = headFlops / (t * c) / k.Rate;
        // With --tp-comm-overlap the collectives are pipelined with the layer's GEMMs: only what outlasts them shows.
        var tensorLayerSeconds = config.Overlap.TensorParallel
            ? Math.Max(0, k.TensorCollectives * k.AllReduce - layerSeconds)
            : k.TensorCollectives * k.AllReduce;
        var contextLayerSeconds = ContextRingExposedSeconds(spec, sequenceLength, cluster, config, e, k);

        // Pipeline: each micro-batch sends its activations forward and their gradient back, once per model chunk.
        // Megatron orders ranks t fastest, then d, then p: pipeline neighbours are t·d ranks apart.
        var transferSeconds = pp > 1 ? 2 * v * TransferSeconds(spec, sequenceLength, cluster, config, e) : 0;

        var stageSeconds = layersOnStage * layerSeconds;
        var stageTensorSeconds = layersOnStage * tensorLayerSeconds;
        var stageContextSeconds = layersOnStage * contextLayerSeconds;
        var bubbleStages = BubbleStages(config.Schedule, pp, v);
        var compute = m * (stageSeconds + headSeconds);
        var tensorComm = m * stageTensorSeconds;
        var pipelineComm = m * transferSeconds;
        var contextComm = m * stageContextSeconds;
        var bubble = bubbleStages * (stageSeconds + stageTensorSeconds + stageContextSeconds + transferSeconds);

        // Data parallel: gradients reduced once per step over the d·c GPUs that hold the same weights (ZeRO-3 also
        // gathers the weights for every micro-batch's forward and backward). Megatron-LM orders ranks t, c, d, p: the
        // group's neighbours are t ranks apart, and it leaves the node when t·c·d exceeds it.
        var parametersOnGpu = ParametersOnGpu(spec, p, config, layersOnStage);
        var replicas = d * c;
        double dataComm = 0;
        if (replicas > 1)
        {
            var crossesNodes = (long)t * replicas > cluster.GpusPerNode;
            var bandwidth = crossesNodes ? cluster.InterNodeBytesPerSecond : cluster.IntraNodeBytesPerSecond;
            var latency = crossesNodes ? cluster.InterNodeLatencySeconds : cluster.IntraNodeLatencySeconds;
            var gradientBytes = Bf16 * parametersOnGpu;
            // What the last micro-batch's backward on this stage, and the first one's forward, can hide.
            var backwardOne = layersOnStage * (2 * forward + k.Recomputed) / (t * c) / k.Rate;
            var forwardOne = layersOnStage * forward / (t * c) / k.Rate;
            if (config.Zero == 1)
            {
                // The distributed optimizer: gradients reduce-scattered, then the updated weights all-gathered (the
                // bytes of one all-reduce); with overlap, the first during the backward, the second during the forward.
                var reduceScatter = AllGatherSeconds(gradientBytes, replicas, bandwidth, latency, e);
                var gather = AllGatherSeconds(gradientBytes, replicas, bandwidth, latency, e);
                dataComm =
                    (config.Overlap.GradReduce ? Math.Max(0, reduceScatter - backwardOne) : reduceScatter)
                    + (config.Overlap.ParamGather ? Math.Max(0, gather - forwardOne) : gather);
            }
            else
            {
                var allReduce = AllReduceSeconds(gradientBytes, replicas, bandwidth, latency, e);
                dataComm = config.Overlap.GradReduce ? Math.Max(0, allReduce - backwardOne) : allReduce;
            }
            if (config.Zero == 3)
                dataComm += 2 * m * AllGatherSeconds(gradientBytes, replicas, bandwidth, latency, e);
            dataComm *= 1 - e.DataParallelOverlap;
        }

        var optimizer = OptimizerStepSeconds(parametersOnGpu, config, cluster, e);
        var time = new StepTime(compute, tensorComm, pipelineComm, bubble, dataComm, contextComm, optimizer);
        var memory = Memory(spec, sequenceLength, config, e, layersOnStage, parametersOnGpu);
        var step = time.Step;
        var microBatchesInStep = (double)m * d;
        // FLOPs are counted as Megatron-LM counts them, over the full s × s, whatever the kernel skips: the rates are
        // comparable with the TFLOP/s and MFU engines report.
        var counted = CostModel.Layer(spec, sequenceLength, config.MicroBatch, config.Recompute);
        var hardware = microBatchesInStep * (spec.Layers * (3 * counted.Forward + counted.Recomputed) + headFlops);
        var model = microBatchesInStep * (spec.Layers * 3 * counted.Forward + headFlops);
        var gpus = config.Gpus;
        var bubbleFraction = bubble / step;
        var estimate = new ParallelEstimate(
            config,
            [],
            time,
            memory,
            cluster.Gpu.MemoryBytes,
            TokensPerSecond: config.GlobalBatch * s / step,
            HardwareFlopsPerGpu: hardware / (step * gpus),
            ModelFlopsUtilization: model / (step * gpus * cluster.Gpu.PeakBf16Flops),
            BubbleFraction: bubbleFraction,
            Bottleneck: ""
        );
        return estimate with { Bottleneck = Bottleneck(estimate) };
    }

    /// <summary>
    /// Seconds per layer per micro-batch that the context-parallel ring adds: in each of c − 1 steps a GPU passes its
    /// key/value chunk (2 · b · (s/c) · kv_dim/t values, bf16) to the next GPU of the ring while it attends to the
    /// chunk it holds, so only what the transfer takes beyond that step's attention shows. The backward moves the keys
    /// and values again and their gradients (twice the bytes, against twice the attention work); a full recomputation
    /// repeats the forward. Ring neighbours are t ranks apart: the ring leaves the node when t·c exceeds it.
    /// </summary>
    public static double ContextRingExposedSeconds(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig config,
        Efficiency? efficiency = null
    )
    {
        var e = efficiency ?? Efficiency.Default;
        return ContextRingExposedSeconds(
            spec,
            sequenceLength,
            cluster,
            config,
            e,
            LayerCosts.Of(spec, ParameterBreakdown.Of(spec), sequenceLength, cluster, config, e)
        );
    }

    private static double ContextRingExposedSeconds(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig config,
        Efficiency e,
        LayerCosts k
    )
    {
        int t = config.Tensor,
            c = config.Context;
        if (c <= 1)
            return 0;
        double b = config.MicroBatch,
            chunk = (double)sequenceLength / c;
        var crossesNodes = (long)t * c > cluster.GpusPerNode;
        var bandwidth = crossesNodes ? cluster.InterNodeBytesPerSecond : cluster.IntraNodeBytesPerSecond;
        var latency = crossesNodes ? cluster.InterNodeLatencySeconds : cluster.IntraNodeLatencySeconds;
        var bytes = 2.0 * Bf16 * b * chunk * spec.KeyValueDim / t; // K and V of one chunk
        var transfer = latency + bytes / (bandwidth * e.LinkFraction);
        // one of c steps; a causal kernel skips the masked half
        var attentionStep =
            AttentionCoreFlops(b, sequenceLength, spec.HiddenSize)
            * (config.FlashAttention ? 0.5 : 1)
            / (t * c)
            / c
            / k.Rate;
        return RingPasses(config) * (c - 1) * Math.Max(0, transfer - attentionStep);
    }

    /// <summary>
    /// Bytes the optimizer step moves per parameter it updates: the fp32 gradient read (Megatron-LM accumulates into
    /// fp32 main gradients), the fp32 master weight and Adam's two moments each read and written, the 16-bit weight
    /// written.
    /// </summary>
    public const double OptimizerBytesPerParameter = 4 + 3 * 8 + 2;

    /// <summary>
    /// The optimizer step of one GPU: its share of the parameters (all it holds, or 1/(d·c) of them with the optimizer
    /// sharded) streamed through memory at a fraction of the GPU's bandwidth. Memory-bound, so the FLOPs do not count.
    /// </summary>
    public static double OptimizerStepSeconds(
        double parametersOnGpu,
        ParallelConfig config,
        Cluster cluster,
        Efficiency? efficiency = null
    )
    {
        var e = efficiency ?? Efficiency.Default;
        var updated = parametersOnGpu / (config.Zero >= 1 ? (double)config.Data * config.Context : 1);
        return updated * OptimizerBytesPerParameter / (cluster.Gpu.MemoryBytesPerSecond * e.MemoryBandwidthFraction);
    }

    /// <summary>Passes of the ring per layer, in forward-pass units: the forward, the backward (twice the bytes) and a
    /// fully recomputed forward.</summary>
    private static int RingPasses(ParallelConfig config) => 3 + (config.Recompute == Recomputation.Full ? 1 : 0);

    /// <summary>QKᵀ and the weighted sum of V over the full s × s, as Megatron-LM counts them: 4·b·s²·h.</summary>
    private static double AttentionCoreFlops(double b, double s, double h) => 4 * b * s * s * h;

    /// <summary>A ring all-reduce of <paramref name="bytes"/> over <paramref name="ranks"/>: 2(k−1) steps, each moving
    /// 1/k of the data.</summary>
    public static double AllReduceSeconds(
        double bytes,
        int ranks,
        double bytesPerSecond,
        double latencySeconds,
        Efficiency e
    ) =>
        ranks <= 1
            ? 0
            : 2.0 * (ranks - 1) * latencySeconds
                + 2.0 * (ranks - 1) / ranks * bytes / (bytesPerSecond * e.LinkFraction);

    /// <summary>A ring all-gather: k−1 steps, each moving 1/k of the data.</summary>
    public static double AllGatherSeconds(
        double bytes,
        int ranks,
        double bytesPerSecond,
        double latencySeconds,
        Efficiency e
    ) =>
        ranks <= 1
            ? 0
            : (ranks - 1) * latencySeconds + (ranks - 1.0) / ranks * bytes / (bytesPerSecond * e.LinkFraction);

    /// <summary>
    /// Parameters one GPU of the fullest stage holds: its layers split t ways, plus the embedding (first stage) or the
    /// LM head (last stage), vocabulary-parallel; a single stage holds both, once when they are tied.
    /// </summary>
    /// <summary>
    /// The bubble in units of one device's forward-and-backward of a micro-batch (F + B + W, with F = B = W as the
    /// layers' FLOPs make them), each from the schedule's own closed form, which the simulator reproduces op by op:
    /// 1F1B (p − 1)(F + B + W) → p − 1, interleaved ÷ v; ZB-H1 (p − 1)(F + B − W) → (p − 1)/3, ÷ v interleaved;
    /// ZBV only the fill, (p − 1) chunk forwards → (p − 1)/6; DualPipeV (PP/2 − 1)(F&amp;B + B − 3W) over PP = 2p
    /// half-size stages → (p − 1)/3; DualPipe the same over PP = p whole stages → (p − 2)/3.
    /// </summary>
    public static double BubbleStages(ScheduleKind schedule, int pipeline, int virtualStages) =>
        schedule switch
        {
            ScheduleKind.Interleaved1F1B => (pipeline - 1) / (double)virtualStages,
            ScheduleKind.ZeroBubbleH1 => (pipeline - 1) / 3.0,
            ScheduleKind.InterleavedZeroBubble => (pipeline - 1) / (3.0 * virtualStages),
            ScheduleKind.ZeroBubbleV => (pipeline - 1) / 6.0,
            ScheduleKind.DualPipeV => (pipeline - 1) / 3.0,
            ScheduleKind.DualPipe => Math.Max(0, pipeline - 2) / 3.0,
            _ => pipeline - 1,
        };

    private static double ParametersOnGpu(ModelSpec spec, ParameterBreakdown p, ParallelConfig c, int layersOnStage)
    {
        var vocabulary = (double)spec.VocabularySize * spec.HiddenSize;
        var ends = c.Pipeline == 1 ? vocabulary * (spec.TiedEmbeddings ? 1 : 2) : vocabulary;
        // DualPipe's devices each hold two stages, one per direction: the weights twice over.
        return ScheduleNames.WeightCopies(c.Schedule) * (layersOnStage * (double)p.PerLayer.Total + ends) / c.Tensor;
    }

    private static MemoryPerGpu Memory(
        ModelSpec spec,
        int sequenceLength,
        ParallelConfig c,
        Efficiency e,
        int layersOnStage,
        double parameters
    )
    {
        // Sharded over the d·c GPUs that hold the same weights (Megatron-LM's distributed optimizer shards over data
        // and context parallel ranks together).
        int t = c.Tensor,
            d = c.Data * c.Context;
        var weights = Bf16 * parameters / (c.Zero >= 3 ? d : 1);
        var gradients = Bf16 * parameters / (c.Zero >= 2 ? d : 1);
        var optimizer = 12 * parameters / (c.Zero >= 1 ? d : 1); // fp32 master weights and Adam's two moments

        var costs = LayerCosts.ActivationBytes(spec, sequenceLength, c);
        var perLayer = costs.PerLayer;
        double s = sequenceLength,
            b = c.MicroBatch;
        // The first device holds the most micro-batches, in units of its share of the layers: p under 1F1B (at most
        // m), scaled by 1 + (p−1)/(p·v) when interleaved; GPipe keeps all m. Interleaved zero bubble and ZBV hold
        // 1F1B's p; DualPipeV one half-size chunk more (2p + 1 chunks, DeepSeek's PP + 1); DualPipe p + 1 stages.
        double inFlight = c.Schedule switch
        {
            ScheduleKind.GPipe => c.MicroBatches,
            ScheduleKind.Interleaved1F1B => Math.Min(c.MicroBatches, c.Pipeline)
                * (1 + (c.Pipeline - 1.0) / (c.Pipeline * c.VirtualStages)),
            ScheduleKind.DualPipeV => c.Pipeline + 0.5,
            ScheduleKind.DualPipe => c.Pipeline + 1,
            _ => Math.Min(c.MicroBatches, c.Pipeline),
        };
        var activations = inFlight * layersOnStage * perLayer;
        if (c.Recompute == Recomputation.Full)
            activations += costs.Everything; // the layer being recomputed holds all of its activations for its backward
        if (c.Pipeline == 1)
            // fp32 logits of the GPU's tokens for the loss
            activations += 4 * s / c.Context * b * spec.VocabularySize / t;
        return new MemoryPerGpu((long)weights, (long)gradients, (long)optimizer, (long)activations, e.ReservedBytes);
    }

    private static string Bottleneck(ParallelEstimate estimate)
    {
        if (!estimate.Fits)
            return "memory: does not fit";
        var time = estimate.Time!;
        var parts = new (string Name, double Seconds)[]
        {
            ("pipeline bubble", time.Bubble),
            ("tensor-parallel communication", time.TensorComm),
            ("pipeline transfers", time.PipelineComm),
            ("data-parallel communication", time.DataComm),
        };
        var largest = parts.MaxBy(x => x.Seconds);
        var headroom = 1 - (double)estimate.Memory!.Total / estimate.GpuMemoryBytes;
        if (headroom < 0.05)
            return "memory headroom";
        return largest.Seconds / time.Step >= 0.1 ? largest.Name : "compute";
    }

    /// <summary>
    /// The pipeline units (embedding, layers, head, loss) as one GPU of a tensor-parallel group runs them under the
    /// configuration: times in ms at the calibrated rate with the tensor-parallel collectives in them, the GPU's share
    /// of the parameters, and its activation bytes per micro-batch (Korthikanti et al.). The Pipeline page plans the
    /// p dimension of a chosen configuration with them.
    /// </summary>
    public static IReadOnlyList<PipelineUnit> Units(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig config,
        Efficiency? efficiency = null
    )
    {
        var e = efficiency ?? Efficiency.Default;
        var p = ParameterBreakdown.Of(spec);
        var k = LayerCosts.Of(spec, p, sequenceLength, cluster, config, e);
        var activations = LayerCosts.ActivationBytes(spec, sequenceLength, config);
        int t = config.Tensor,
            group = config.Tensor * config.Context;
        double s = (double)sequenceLength / config.Context,
            b = config.MicroBatch,
            h = spec.HiddenSize,
            vocab = spec.VocabularySize;
        double Ms(double flops) => flops / group / k.Rate * 1e3;
        // The ring's exposed time per forward-pass unit: one in the forward, the rest in the backward.
        var ringPassMs =
            ContextRingExposedSeconds(spec, sequenceLength, cluster, config, e, k) * 1e3 / RingPasses(config);
        var collectiveMs = k.AllReduce * 1e3;
        var split = config.SequenceParallel ? t : 1;
        var units = new List<PipelineUnit>(UnitNumbering.Count(spec.Layers))
        {
            new("embedding", UnitKind.Embedding, 0, 0, 0, p.Embedding / t, (long)(2 * s * b * h / split)),
        };
        var extra = k.TensorCollectives - 4;
        // The layer's FLOPs split as the pipeline planner splits them (CostModel.Layer), at this GPU's share and rate,
        // with Megatron's count: the recomputed part runs in the backward.
        var layer = CostModel.Layer(spec, sequenceLength, config.MicroBatch, config.Recompute, config.FlashAttention);
        for (var i = 0; i < spec.Layers; i++)
            units.Add(
                new PipelineUnit(
                    $"layers.{i}",
                    UnitKind.Layer,
                    Ms(layer.Forward) + 2 * collectiveMs + ringPassMs,
                    Ms(layer.InputGradient + layer.Recomputed)
                        + (2 + extra) * collectiveMs
                        + ringPassMs * (RingPasses(config) - 1),
                    Ms(layer.WeightGradient),
                    p.PerLayer.Total / t,
                    (long)activations.PerLayer
                )
            );
        var head = 2 * b * sequenceLength * h * vocab;
        units.Add(
            new PipelineUnit(
                "norm+lm_head",
                UnitKind.Head,
                Ms(head),
                Ms(head),
                Ms(head),
                (p.FinalNorm + p.LmHead) / t,
                (long)(4 * s * b * vocab / t)
            )
        );
        units.Add(
            new PipelineUnit(
                "loss",
                UnitKind.Loss,
                Ms(5 * vocab * sequenceLength * b),
                Ms(5 * vocab * sequenceLength * b),
                0,
                0,
                0
            )
        );
        return units;
    }

    /// <summary>
    /// Milliseconds of tensor-parallel collectives inside one layer's forward and inside its backward for one
    /// micro-batch (the share of <see cref="Units"/>' layer times that is communication): 2 all-reduces forward, 2
    /// backward and 2 more when the forward is recomputed; none without tensor parallelism.
    /// </summary>
    public static (double Forward, double Backward) TensorCommunicationMs(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig config,
        Efficiency? efficiency = null
    )
    {
        var k = LayerCosts.Of(
            spec,
            ParameterBreakdown.Of(spec),
            sequenceLength,
            cluster,
            config,
            efficiency ?? Efficiency.Default
        );
        return (2 * k.AllReduce * 1e3, (k.TensorCollectives - 2) * k.AllReduce * 1e3);
    }

    /// <summary>
    /// Bytes per GPU of optimizer-related state for each parameter it holds: 2 (bf16 weights) + 2 (gradients) + 12
    /// (fp32 master and Adam's moments), sharded by the ZeRO stage; unsharded, <see
    /// cref="MemoryAccount.AdamBytesPerParameter"/>.
    /// </summary>
    public static double StateBytesPerParameter(ParallelConfig c)
    {
        var shards = (double)c.Data * c.Context;
        return Bf16 / (c.Zero >= 3 ? shards : 1)
            + Bf16 / (c.Zero >= 2 ? shards : 1)
            + 12.0 / (c.Zero >= 1 ? shards : 1);
    }

    /// <summary>Seconds to send one micro-batch's activations (or their gradient) to the next pipeline stage.</summary>
    public static double TransferSeconds(
        ModelSpec spec,
        int sequenceLength,
        Cluster cluster,
        ParallelConfig c,
        Efficiency? efficiency = null
    )
    {
        var e = efficiency ?? Efficiency.Default;
        var crossesNodes = (long)c.Tensor * c.Context * c.Data >= cluster.GpusPerNode;
        var bandwidth = crossesNodes ? cluster.InterNodeBytesPerSecond : cluster.IntraNodeBytesPerSecond;
        var latency = crossesNodes ? cluster.InterNodeLatencySeconds : cluster.IntraNodeLatencySeconds;
        return latency
            + (double)Bf16
                * c.MicroBatch
                * sequenceLength
                / c.Context
                * spec.HiddenSize
                / c.Tensor
                / (bandwidth * e.LinkFraction);
    }

    /// <summary>What one layer costs for one micro-batch under a configuration.</summary>
    private sealed record LayerCosts(
        double Forward,
        double Recomputed,
        double HeadFlops,
        double Rate,
        int TensorCollectives,
        double AllReduce
    )
    {
        public static LayerCosts Of(
            ModelSpec spec,
            ParameterBreakdown p,
            int sequenceLength,
            Cluster cluster,
            ParallelConfig c,
            Efficiency e
        )
        {
            double s = sequenceLength,
                b = c.MicroBatch,
                h = spec.HiddenSize;
            var layer = CostModel.Layer(spec, sequenceLength, c.MicroBatch, c.Recompute, c.FlashAttention);
            double forward = layer.Forward,
                recomputed = layer.Recomputed;
            // Tensor parallel: 2 all-reduces of the b·s·h activations forward and 2 backward per layer (2 more when the
            // forward is recomputed); sequence parallelism moves the same bytes as reduce-scatter + all-gather pairs.
            var collectives = 4 + (c.Recompute == Recomputation.Full ? 2 : 0);
            var allReduce = AllReduceSeconds(
                Bf16 * b * s / c.Context * h,
                c.Tensor,
                cluster.IntraNodeBytesPerSecond,
                cluster.IntraNodeLatencySeconds,
                e
            );
            return new LayerCosts(
                forward,
                recomputed,
                6 * b * s * h * spec.VocabularySize,
                cluster.Gpu.PeakBf16Flops * e.LayerFraction(cluster.Gpu, spec.HiddenSize, c.Tensor),
                collectives,
                allReduce
            );
        }

        /// <summary>Bytes per layer per micro-batch on one GPU: <see cref="MemoryAccount.LayerActivationBytes"/> for
        /// its t, SP, c and recomputation.</summary>
        public static (double PerLayer, double Everything) ActivationBytes(
            ModelSpec spec,
            int sequenceLength,
            ParallelConfig c
        ) =>
            MemoryAccount.LayerActivationBytes(
                spec,
                sequenceLength,
                c.MicroBatch,
                c.Recompute,
                c.Tensor,
                c.SequenceParallel,
                c.Context,
                c.FlashAttention
            );
    }
}
