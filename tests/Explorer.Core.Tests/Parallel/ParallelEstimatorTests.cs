using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests.Parallel;

public class ParallelEstimatorTests
{
    // 4 layers, h = 1024, GELU MLP of 4096, 8 heads: every number below is worked out by hand from the shape.
    private static readonly ModelSpec Small = new(
        "small",
        Layers: 4,
        HiddenSize: 1024,
        IntermediateSize: 4096,
        AttentionHeads: 8,
        KeyValueHeads: 8,
        VocabularySize: 1000,
        ContextLength: 4096,
        FfnKind: FfnKind.Gelu
    );

    private static readonly Cluster A100 = Cluster.Node8(Gpu.A100_80GB);

    /// <summary>Links so fast that transfers and collectives cost nothing: only compute and the bubble
    /// remain.</summary>
    private static readonly Cluster Instant = A100 with
    {
        IntraNodeBytesPerSecond = 1e300,
        InterNodeBytesPerSecond = 1e300,
        IntraNodeLatencySeconds = 0,
        InterNodeLatencySeconds = 0,
    };

    [Theory]
    [InlineData(ScheduleKind.OneFOneB, 8, 1)]
    [InlineData(ScheduleKind.Interleaved1F1B, 8, 2)]
    [InlineData(ScheduleKind.ZeroBubbleH1, 8, 1)]
    [InlineData(ScheduleKind.InterleavedZeroBubble, 8, 2)]
    [InlineData(ScheduleKind.InterleavedZeroBubble, 4, 3)]
    [InlineData(ScheduleKind.ZeroBubbleV, 8, 1)]
    [InlineData(ScheduleKind.DualPipeV, 8, 1)]
    [InlineData(ScheduleKind.DualPipe, 8, 1)]
    [InlineData(ScheduleKind.DualPipe, 4, 1)]
    public void TheEstimatorsBubbleIsWhatTheSimulatorRunsOpByOp(ScheduleKind schedule, int p, int v)
    {
        // The estimator's closed form, in units of a device's F + B + W with F = B = W, against the idle time of the
        // simulated schedule with those times split over the device's chunks (DualPipe's stages are whole shares).
        const int m = 48;
        var stages = SchedulePlacement.Stages(schedule, p, v);
        var share = schedule == ScheduleKind.DualPipe ? 1.0 : (double)p / stages;
        var result = ScheduleSimulator.Simulate(
            schedule,
            Enumerable.Repeat(new StageTimes(share, share, share), stages).ToArray(),
            m,
            v
        );
        var idle = result.Makespan - result.BusyTime.Max();
        Assert.Equal(ParallelEstimator.BubbleStages(schedule, p, v) * 3, idle, 9);
    }

    [Theory]
    [InlineData(Recomputation.None)]
    [InlineData(Recomputation.Full)]
    public void APipelineOnlyConfigurationCostsItsLayersAsThePlannerDoes(Recomputation recompute)
    {
        // One costing: with t = c = d = 1 the estimator's layer units are the planner's (Megatron's count: the
        // recomputed forward in B), only at the GPU's calibrated rate instead of the page's TFLOP/s. The planner's
        // units count the attention core over the full s × s, as the unfused kernel runs it.
        var config = new ParallelConfig
        {
            Pipeline = 2,
            GlobalBatch = 8,
            Recompute = recompute,
            FlashAttention = false,
        };
        var estimated = ParallelEstimator.Units(Small, 512, A100, config)[1];
        var planned = CostModel.Units(
            Small,
            new CostSettings
            {
                SequenceLength = 512,
                Recomputation = recompute,
                Flops = FlopConvention.Megatron,
            }
        )[1];
        var rate = estimated.Forward / planned.Forward;
        Assert.Equal(planned.InputGradient * rate, estimated.InputGradient, 9);
        Assert.Equal(planned.WeightGradient * rate, estimated.WeightGradient, 9);
        Assert.Equal(planned.Parameters, estimated.Parameters);
        Assert.Equal(planned.ActivationBytes, estimated.ActivationBytes);
    }

    [Fact]
    public void WeightsGradientsAndOptimizerStateFollowTheZeroStage()
    {
        // Per layer: q, k, v, o of h² each, up and down of h·4h, two norms of h = 12,584,960. The fullest stage of
        // p = 2 holds 2 layers and the embedding (V·h = 1,024,000): 26,193,920 parameters, halved by t = 2.
        const double onGpu = (2 * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096 + 2 * 1024) + 1000.0 * 1024) / 2;
        foreach (var zero in new[] { 0, 1 })
        {
            var e = ParallelEstimator.Estimate(
                Small,
                512,
                A100,
                new ParallelConfig
                {
                    Tensor = 2,
                    Pipeline = 2,
                    Data = 4,
                    GlobalBatch = 8,
                    Zero = zero,
                }
            );
            Assert.True(e.Valid, string.Join("; ", e.Violations));
            Assert.Equal((long)(2 * onGpu), e.Memory!.Weights);
            Assert.Equal((long)(2 * onGpu), e.Memory.Gradients);
            Assert.Equal((long)(12 * onGpu / (zero == 1 ? 4 : 1)), e.Memory.OptimizerState);
        }
        // p = 1 holds everything: both ends (untied), and ZeRO-2 and -3 shard gradients and then weights over d = 4.
        const double all = 4 * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096 + 2 * 1024) + 2 * 1000.0 * 1024;
        var zero3 = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig
            {
                Data = 4,
                GlobalBatch = 8,
                Zero = 3,
            }
        );
        Assert.Equal((long)(2 * all / 4), zero3.Memory!.Weights);
        Assert.Equal((long)(2 * all / 4), zero3.Memory.Gradients);
        Assert.Equal((long)(12 * all / 4), zero3.Memory.OptimizerState);
    }

    [Fact]
    public void ThePipelinePlannerAndTheEstimatorCountTheSameAdamState()
    {
        // One costing of the state: unsharded, the estimator's bytes per parameter are the accounting's 2 + 2 + 4 + 4 +
        // 4, which the pipeline planner takes by default; ZeRO-1 over d = 4 shards the 12 optimizer bytes.
        Assert.Equal(2 + 2 + 4 + 4 + 4, Explorer.Core.Accounting.MemoryAccount.AdamBytesPerParameter);
        Assert.Equal(
            Explorer.Core.Accounting.MemoryAccount.AdamBytesPerParameter,
            ParallelEstimator.StateBytesPerParameter(new ParallelConfig { Zero = 0 })
        );
        Assert.Equal(
            Explorer.Core.Accounting.MemoryAccount.AdamBytesPerParameter,
            new PlanRequest { Units = [] }.StateBytesPerParameter
        );
        Assert.Equal(
            2 + 2 + 12 / 4.0,
            ParallelEstimator.StateBytesPerParameter(new ParallelConfig { Data = 4, Zero = 1 }),
            12
        );
    }

    [Fact]
    public void TheOptimizerStepStreamsTheShardOfTheStateThroughMemory()
    {
        // The GPU of p = 2, t = 2 holds 13,096,960 parameters (as above); Adam moves 30 bytes for each it updates, at
        // 80% of the A100's 2,039 GB/s, all of them without sharding and a quarter with the distributed optimizer.
        const double onGpu = (2 * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096 + 2 * 1024) + 1000.0 * 1024) / 2;
        foreach (var (zero, share) in new[] { (0, 1.0), (1, 0.25) })
        {
            var e = ParallelEstimator.Estimate(
                Small,
                512,
                A100,
                new ParallelConfig
                {
                    Tensor = 2,
                    Pipeline = 2,
                    Data = 4,
                    GlobalBatch = 8,
                    Zero = zero,
                }
            );
            Assert.Equal(onGpu * share * 30 / (2039e9 * 0.8), e.Time!.Optimizer, 15);
        }
    }

    [Fact]
    public void ActivationsAreKorthikantisPerLayerBytesTimesTheMicroBatchesInFlight()
    {
        // s = 2048, b = 1, h = 1024, a = 8: s·b·h·(34 + 5·a·s/h) = 2,097,152 · 114 bytes per layer, t = 1.
        const double perLayer = 2048.0 * 1024 * (34 + 5.0 * 8 * 2048 / 1024);
        // p = 2 under 1F1B with m = 8: the first stage holds 2 micro-batches of its 2 layers.
        var unfused = new ParallelConfig
        {
            Pipeline = 2,
            GlobalBatch = 8,
            FlashAttention = false,
        };
        var e = ParallelEstimator.Estimate(Small, 2048, A100, unfused);
        Assert.Equal((long)(2 * 2 * perLayer), e.Memory!.Activations);
        // A fused attention kernel keeps no scores, only fp32 row statistics: 34·s·b·h + 4·a·s·b.
        var flash = ParallelEstimator.Estimate(Small, 2048, A100, unfused with { FlashAttention = true });
        Assert.Equal((long)(2 * 2 * (34.0 * 2048 * 1024 + 4.0 * 8 * 2048)), flash.Memory!.Activations);
        // GPipe holds all 8.
        var gpipe = ParallelEstimator.Estimate(Small, 2048, A100, unfused with { Schedule = ScheduleKind.GPipe });
        Assert.Equal((long)(8 * 2 * perLayer), gpipe.Memory!.Activations);
        // t = 2 with sequence parallelism divides all of it by t; selective keeps 34·s·b·h / t.
        var sp = ParallelEstimator.Estimate(Small, 2048, A100, unfused with { Tensor = 2, SequenceParallel = true });
        Assert.Equal((long)(2 * 2 * perLayer / 2), sp.Memory!.Activations);
        var selective = ParallelEstimator.Estimate(
            Small,
            2048,
            A100,
            unfused with
            {
                Tensor = 2,
                SequenceParallel = true,
                Recompute = Recomputation.Selective,
            }
        );
        Assert.Equal((long)(2 * 2 * 34 * 2048.0 * 1024 / 2), selective.Memory!.Activations);
        // Without SP, t = 2: s·b·h·(10 + 24/t + 5·a·s/(h·t)).
        var tpOnly = ParallelEstimator.Estimate(Small, 2048, A100, unfused with { Tensor = 2 });
        Assert.Equal(
            (long)(2 * 2 * 2048.0 * 1024 * (10 + 12 + 5.0 * 8 * 2048 / (1024 * 2))),
            tpOnly.Memory!.Activations
        );
    }

    [Fact]
    public void TheBubbleIsPMinusOneStagesShrunkByVirtualStagesAndByZeroBubble()
    {
        var config = new ParallelConfig { Pipeline = 4, GlobalBatch = 16 };
        var oneF = ParallelEstimator.Estimate(Small, 1024, Instant, config);
        var interleaved = ParallelEstimator.Estimate(
            Small,
            1024,
            Instant,
            config with
            {
                Schedule = ScheduleKind.Interleaved1F1B,
                VirtualStages = 2,
                Pipeline = 2,
            }
        );
        var zb = ParallelEstimator.Estimate(Small, 1024, Instant, config with { Schedule = ScheduleKind.ZeroBubbleH1 });
        // One stage of p = 4 is one layer: with instant links, compute = m·(layer + head) and bubble = (p−1)·layer.
        var head =
            6.0
            * 1
            * 1024
            * 1024
            * 1000
            / (Gpu.A100_80GB.PeakBf16Flops * Efficiency.Default.LayerFraction(Gpu.A100_80GB, 1024, 1));
        var layer = oneF.Time!.Compute / 16 - head;
        Assert.Equal(3 * layer, oneF.Time.Bubble, 12);
        Assert.Equal(oneF.Time.Bubble / 3, zb.Time!.Bubble, 12);
        // p = 2, v = 2: a stage is 2 layers, bubble (p−1)/v stages = one layer.
        Assert.Equal(layer, interleaved.Time!.Bubble, 12);
        Assert.Equal(0, oneF.Time.TensorComm + oneF.Time.PipelineComm + oneF.Time.DataComm, 12);
    }

    [Fact]
    public void ALayersRateIsTheMeasuredMatmulCeilingLessMemoryBoundWorkAndNarrowShards()
    {
        // h = 4096 split 8 ways on an A100:
        // 271.2 TFLOP/s × 0.81 × h / (h + 6.5 · 271.2e12 / 2039e9) × 512 / (512 + 100).
        var e = Efficiency.Default;
        var half = 6.5 * 271.2e12 / 2039e9;
        var expected = 271.2e12 * 0.81 * 4096 / (4096 + half) * 512 / (512 + 100.0);
        Assert.Equal(expected, Gpu.A100_80GB.PeakBf16Flops * e.LayerFraction(Gpu.A100_80GB, 4096, 8), 0);
        // The memory-bound share grows with the GPU's FLOPs per byte: an H100 does 794.5 TFLOP/s on 3.35 TB/s.
        Assert.Equal(
            (794.5 / 3.35) / (271.2 / 2.039),
            e.HalfEfficiencyHidden(Gpu.H100_80GB) / e.HalfEfficiencyHidden(Gpu.A100_80GB),
            9
        );
        // A GPU nobody measured takes 80% of its datasheet peak as its matmul ceiling.
        var custom = Gpu.A100_80GB with { MatmulFraction = Gpu.UnmeasuredMatmulFraction };
        Assert.Equal(0.8 * 312e12, custom.MatmulFlops, 0);
    }

    [Fact]
    public void AFusedCausalKernelTakesHalfTheAttentionCoresTime()
    {
        // p = 1, t = 1, no recomputation, instant links, s = 2048: the attention core is 4·b·s²·h forward and twice
        // that backward per layer; a causal kernel skips half of all three, 6·b·s²·h per layer per micro-batch.
        var unfused = new ParallelConfig { GlobalBatch = 4, FlashAttention = false };
        var slow = ParallelEstimator.Estimate(Small, 2048, Instant, unfused);
        var fast = ParallelEstimator.Estimate(Small, 2048, Instant, unfused with { FlashAttention = true });
        var saved = 4 * Small.Layers * 6.0 * 2048 * 2048 * 1024 / Rate(Instant);
        Assert.Equal(saved, slow.Time!.Compute - fast.Time!.Compute, 9);
        // The FLOPs reported are Megatron's count either way: the same work, done sooner.
        Assert.Equal(
            1,
            fast.HardwareFlopsPerGpu * fast.StepSeconds / (slow.HardwareFlopsPerGpu * slow.StepSeconds),
            12
        );
    }

    [Fact]
    public void ARingAllReduceMovesTwiceTheDataLessOneShare()
    {
        // 1 GB over 8 ranks at 100 GB/s achieving 80%, 10 µs per step: 14·10 µs + 2·7/8·1e9 / 8e10.
        var seconds = ParallelEstimator.AllReduceSeconds(1e9, 8, 100e9, 10e-6, Efficiency.Default);
        Assert.Equal(14 * 10e-6 + 1.75e9 / 80e9, seconds, 12);
        Assert.Equal(0, ParallelEstimator.AllReduceSeconds(1e9, 1, 100e9, 10e-6, Efficiency.Default));
    }

    [Fact]
    public void TensorParallelTimeIsFourAllReducesPerLayerPerMicroBatchAndSixWithFullRecomputation()
    {
        var config = new ParallelConfig { Tensor = 8, GlobalBatch = 2 };
        var e = ParallelEstimator.Estimate(Small, 1024, A100, config);
        var allReduce = ParallelEstimator.AllReduceSeconds(
            2.0 * 1024 * 1024,
            8,
            A100.IntraNodeBytesPerSecond,
            A100.IntraNodeLatencySeconds,
            Efficiency.Default
        );
        Assert.Equal(2 * 4 * 4 * allReduce, e.Time!.TensorComm, 12); // m = 2, 4 layers, 4 collectives
        var full = ParallelEstimator.Estimate(Small, 1024, A100, config with { Recompute = Recomputation.Full });
        Assert.Equal(2 * 4 * 6 * allReduce, full.Time!.TensorComm, 12);
    }

    /// <summary>One layer's forward FLOPs as Megatron-LM counts them (matmuls and the s × s attention core), by
    /// hand.</summary>
    private static double LayerForwardFlops(int s, int b = 1) =>
        2.0 * b * s * (4.0 * 1024 * 1024 + 2.0 * 1024 * 4096) + 4.0 * b * s * s * 1024;

    private static double Rate(Cluster cluster, int tensor = 1) =>
        cluster.Gpu.PeakBf16Flops * Efficiency.Default.LayerFraction(cluster.Gpu, 1024, tensor);

    [Fact]
    public void TensorParallelOverlapHidesTheCollectivesBehindTheLayersGemms()
    {
        // Sequence parallelism is the rule (Megatron-LM asserts it).
        var noSp = ParallelEstimator.Estimate(
            Small,
            1024,
            A100,
            new ParallelConfig
            {
                Tensor = 8,
                GlobalBatch = 2,
                Overlap = new CommOverlap(TensorParallel: true),
            }
        );
        Assert.Contains(noSp.Violations, v => v.Contains("only with sequence parallelism"));
        // On NVLink with t = 2 four collectives are shorter than the layer's work: nothing shows.
        var wide = ParallelEstimator.Estimate(
            Small,
            1024,
            A100,
            new ParallelConfig
            {
                Tensor = 2,
                GlobalBatch = 2,
                SequenceParallel = true,
                Overlap = new CommOverlap(TensorParallel: true),
            }
        );
        Assert.Equal(0, wide.Time!.TensorComm);
        var config = new ParallelConfig
        {
            Tensor = 8,
            GlobalBatch = 2,
            SequenceParallel = true,
            FlashAttention = false,
        };
        // On a slow link what shows is the collectives less the layer's time, 3 forwards' work over t: per layer, per
        // micro-batch.
        var slow = A100 with { IntraNodeBytesPerSecond = 1e9 };
        var plain = ParallelEstimator.Estimate(Small, 1024, slow, config);
        var hidden = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Overlap = new CommOverlap(TensorParallel: true),
            }
        );
        var layerSeconds = 3 * LayerForwardFlops(1024) / 8 / Rate(slow, 8);
        Assert.True(plain.Time!.TensorComm > 2 * 4 * layerSeconds, "the collectives outlast the GEMMs here");
        Assert.Equal(plain.Time.TensorComm - 2 * 4 * layerSeconds, hidden.Time!.TensorComm, 9);
    }

    [Fact]
    public void GradientReductionAndWeightGatherOverlapTheBackwardAndTheForward()
    {
        // p = 2, d = 4 over a slow network: the distributed optimizer's reduce-scatter and all-gather (each half the
        // bytes of an all-reduce) outlast compute. Overlapping the first hides one micro-batch's backward on the stage
        // (2 layers × 2 forwards' work), the second one micro-batch's forward (2 layers × 1).
        var slow = A100 with { IntraNodeBytesPerSecond = 1e8, InterNodeBytesPerSecond = 1e8 };
        var config = new ParallelConfig
        {
            Pipeline = 2,
            Data = 4,
            GlobalBatch = 8,
            Zero = 1,
            FlashAttention = false,
        };
        var plain = ParallelEstimator.Estimate(Small, 1024, slow, config);
        var grad = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Overlap = new CommOverlap(GradReduce: true),
            }
        );
        var both = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Overlap = new CommOverlap(GradReduce: true, ParamGather: true),
            }
        );
        var forwardOne = 2 * LayerForwardFlops(1024) / Rate(slow);
        Assert.Equal(plain.Time!.DataComm - 2 * forwardOne, grad.Time!.DataComm, 9);
        Assert.Equal(plain.Time.DataComm - 3 * forwardOne, both.Time!.DataComm, 9);
        // Megatron-LM's rules: the weight gather overlaps only with the distributed optimizer and with the gradient
        // overlap.
        var alone = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Overlap = new CommOverlap(ParamGather: true),
            }
        );
        Assert.Contains(alone.Violations, v => v.Contains("--overlap-grad-reduce"));
        var zero0 = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Zero = 0,
                Overlap = new CommOverlap(true, true),
            }
        );
        Assert.Contains(zero0.Violations, v => v.Contains("ZeRO-1"));
        // Without the distributed optimizer one all-reduce overlaps the backward.
        var replicated = ParallelEstimator.Estimate(Small, 1024, slow, config with { Zero = 0 });
        var replicatedOverlap = ParallelEstimator.Estimate(
            Small,
            1024,
            slow,
            config with
            {
                Zero = 0,
                Overlap = new CommOverlap(GradReduce: true),
            }
        );
        Assert.Equal(replicated.Time!.DataComm - 2 * forwardOne, replicatedOverlap.Time!.DataComm, 9);
    }

    [Fact]
    public void ContextParallelismSplitsEachSequencesWorkAndActivationsOverItsGpus()
    {
        // c = 2 with the same t, p, d, batch: each GPU runs half of every layer's tokens, so compute and activations
        // halve; weights and the micro-batch count stay; the GPUs double.
        foreach (var recompute in new[] { Recomputation.None, Recomputation.Full })
        {
            var plain = ParallelEstimator.Estimate(
                Small,
                2048,
                Instant,
                new ParallelConfig
                {
                    Pipeline = 2,
                    GlobalBatch = 8,
                    Recompute = recompute,
                }
            );
            var split = ParallelEstimator.Estimate(
                Small,
                2048,
                Instant,
                new ParallelConfig
                {
                    Context = 2,
                    Pipeline = 2,
                    GlobalBatch = 8,
                    Recompute = recompute,
                }
            );
            Assert.True(split.Valid, string.Join("; ", split.Violations));
            Assert.Equal(plain.Config.Gpus * 2, split.Config.Gpus);
            Assert.Equal(plain.Time!.Compute / 2, split.Time!.Compute, 12);
            Assert.Equal(plain.Memory!.Activations / 2.0, split.Memory!.Activations, 0);
            Assert.Equal(plain.Memory.Weights, split.Memory.Weights);
            Assert.Equal(0, split.Time.ContextComm); // instant links: the ring hides behind attention
        }
        // p = 1 keeps the fp32 logits of its tokens for the loss: 4·(s/c)·b·V bytes, halved too.
        var whole = ParallelEstimator.Estimate(Small, 2048, Instant, new ParallelConfig { GlobalBatch = 8 });
        var halves = ParallelEstimator.Estimate(
            Small,
            2048,
            Instant,
            new ParallelConfig { Context = 2, GlobalBatch = 8 }
        );
        Assert.Equal(whole.Memory!.Activations / 2.0, halves.Memory!.Activations, 0);
        // The distributed optimizer shards over the d·c GPUs that hold the same weights.
        Assert.Equal(whole.Memory.OptimizerState / 2.0, halves.Memory.OptimizerState, 0);
    }

    [Fact]
    public void TheContextRingMovesEachKeyValueChunkCMinusOneTimesAPass()
    {
        // On a slow link the ring's transfers dwarf attention: per layer, 3 passes (forward, backward twice the bytes)
        // of c − 1 steps, each moving K and V of one chunk: 2 tensors · 2 bytes · b · (s/c) · kv_dim / t.
        var slow = A100 with { IntraNodeBytesPerSecond = 1e6, IntraNodeLatencySeconds = 0 };
        var config = new ParallelConfig
        {
            Tensor = 2,
            Context = 4,
            GlobalBatch = 8,
        };
        const double bytes = 2 * 2 * 1 * (2048.0 / 4) * 1024 / 2;
        var expected = 3 * (4 - 1) * bytes / (1e6 * Efficiency.Default.LinkFraction);
        Assert.Equal(1.0, ParallelEstimator.ContextRingExposedSeconds(Small, 2048, slow, config) / expected, 4);
        // Full recomputation runs the forward's ring again.
        Assert.Equal(
            1.0,
            ParallelEstimator.ContextRingExposedSeconds(
                Small,
                2048,
                slow,
                config with
                {
                    Recompute = Recomputation.Full,
                }
            ) / (expected * 4 / 3),
            4
        );
        Assert.Equal(0, ParallelEstimator.ContextRingExposedSeconds(Small, 2048, slow, config with { Context = 1 }));
        // In the step: every micro-batch, every layer of the stage.
        var e = ParallelEstimator.Estimate(Small, 2048, slow, config);
        Assert.Equal(
            8 * 4 * ParallelEstimator.ContextRingExposedSeconds(Small, 2048, slow, config),
            e.Time!.ContextComm,
            9
        );
    }

    [Theory]
    [InlineData(3, "the sequence length 2048 is not a multiple of 6")]
    [InlineData(0, "Context parallel c is 0")]
    public void ContextParallelRulesAreMegatronsAndNamed(int c, string expected)
    {
        // Megatron-LM's validate_args: seq-length should be a multiple of 2 * context-parallel-size.
        var e = ParallelEstimator.Estimate(Small, 2048, A100, new ParallelConfig { Context = c, GlobalBatch = 8 });
        Assert.Contains(e.Violations, v => v.Contains(expected));
    }

    [Theory]
    [InlineData(3, 1, 1, 8, "t = 3 does not divide the 8 attention heads")]
    [InlineData(16, 1, 1, 16, "spans more than one node of 8 GPUs")]
    [InlineData(1, 5, 1, 8, "p = 5 is more stages than the 4 layers")]
    [InlineData(1, 1, 3, 8, "Global batch 8 is not a multiple of d·b = 3·1 = 3")]
    public void BrokenRulesAreListedWithTheirNumbers(int t, int p, int d, int batch, string expected)
    {
        var e = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig
            {
                Tensor = t,
                Pipeline = p,
                Data = d,
                GlobalBatch = batch,
            }
        );
        Assert.False(e.Valid);
        Assert.Contains(e.Violations, v => v.Contains(expected));
        Assert.Equal("invalid", e.Bottleneck);
    }

    [Fact]
    public void ScheduleAndZeroRulesAreListed()
    {
        var zero2 = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig
            {
                Pipeline = 2,
                GlobalBatch = 8,
                Zero = 2,
            }
        );
        Assert.Contains(zero2.Violations, v => v.Contains("ZeRO-2"));
        var v1 = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig
            {
                Pipeline = 2,
                GlobalBatch = 8,
                Schedule = ScheduleKind.Interleaved1F1B,
            }
        );
        Assert.Contains(v1.Violations, v => v.Contains("v ≥ 2"));
        var chunks = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig
            {
                Pipeline = 2,
                VirtualStages = 3,
                GlobalBatch = 8,
                Schedule = ScheduleKind.Interleaved1F1B,
            }
        );
        Assert.Contains(chunks.Violations, v => v.Contains("p·v = 6"));
        var sp = ParallelEstimator.Estimate(
            Small,
            512,
            A100,
            new ParallelConfig { GlobalBatch = 8, SequenceParallel = true }
        );
        Assert.Contains(sp.Violations, v => v.Contains("t > 1"));
        var zeroes = ParallelEstimator.Estimate(Small, 512, A100, new ParallelConfig { Data = 0 });
        Assert.Contains(zeroes.Violations, v => v.Contains("Data parallel d is 0"));
    }

    [Fact]
    public void AModelTooLargeForTheGpuDoesNotFitAndSaysSo()
    {
        var e = ParallelEstimator.Estimate(
            ModelPresets.DeepSeekLlm67B,
            4096,
            Cluster.Node8(Gpu.H200),
            new ParallelConfig { GlobalBatch = 1 }
        );
        Assert.True(e.Valid);
        Assert.False(e.Fits);
        Assert.Equal("memory: does not fit", e.Bottleneck);
        // 16 bytes per parameter of 67.4B, unsharded, is far above 141 GB.
        Assert.True(e.Memory!.Weights + e.Memory.Gradients + e.Memory.OptimizerState > 16L * 67_000_000_000);
    }
}
