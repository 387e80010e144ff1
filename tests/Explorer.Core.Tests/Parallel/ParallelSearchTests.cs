using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Core.Tests.Parallel;

public class ParallelSearchTests
{
    [Fact]
    public void TheSixtySevenBOnSixtyFourH200sHasFittingConfigurationsFastestFirst()
    {
        var result = ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, Cluster.Node8(Gpu.H200), 64, 1024);
        Assert.Empty(result.Problems);
        Assert.NotEmpty(result.Fitting);
        Assert.True(result.Considered >= result.Valid && result.Valid >= result.Fitting.Count);
        for (var i = 1; i < result.Fitting.Count; i++)
            Assert.True(result.Fitting[i - 1].StepSeconds <= result.Fitting[i].StepSeconds);
        Assert.All(result.Fitting, e =>
        {
            Assert.True(e.Fits);
            Assert.Equal(64, e.Config.Gpus);
            Assert.Equal(0, 1024 % (e.Config.Data * e.Config.MicroBatch));
            Assert.Equal(0, 64 % e.Config.Tensor); // and the 64 heads, 8 KV heads
            Assert.Equal(0, 8 % e.Config.Tensor);
            Assert.True(e.Memory!.Total <= Gpu.H200.MemoryBytes);
        });
        // Tensor parallelism is among what makes it fit (as DeepSeek trained it, with t, SP, 1F1B and ZeRO-1).
        Assert.Contains(result.Fitting, e => e.Config.Tensor > 1);
        // The schedules torchtitan runs today are searched, with their engines' rules: a V has two chunks per device,
        // DualPipeV at least 2p micro-batches; DualPipe, which only DeepSeek's own library runs, is not searched.
        var schedules = result.Fitting.Select(e => e.Config.Schedule).ToHashSet();
        Assert.Superset(
            new HashSet<ScheduleKind>
            {
                ScheduleKind.ZeroBubbleV,
                ScheduleKind.DualPipeV,
                ScheduleKind.InterleavedZeroBubble,
            },
            schedules
        );
        Assert.DoesNotContain(ScheduleKind.DualPipe, schedules);
        Assert.All(result.Fitting.Where(e => SchedulePlacement.IsV(e.Config.Schedule)), e =>
            Assert.Equal(2, e.Config.VirtualStages)
        );
        Assert.All(result.Fitting.Where(e => e.Config.Schedule == ScheduleKind.DualPipeV), e =>
            Assert.True(e.Config.MicroBatches >= 2 * e.Config.Pipeline)
        );
    }

    [Fact]
    public void LongSequencesAreSplitByContextParallelismShortOnesAreNot()
    {
        var h200 = Cluster.Node8(Gpu.H200);
        // 4K tokens: one GPU's share would be under MinTokensPerContextGpu for any c > 1.
        Assert.All(ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 4096, h200, 64, 256).Fitting, e =>
            Assert.Equal(1, e.Config.Context)
        );
        // 32K tokens: c = 2, 4 and 8 are tried (8: 4K each), never 16; every one keeps 2c dividing the sequence and
        // t·c·p·d = 64; and splitting the sequence beats every configuration that keeps it whole.
        var result = ParallelSearch.Search(ModelPresets.DeepSeekLlm67B, 32768, h200, 64, 32);
        Assert.Equal([1, 2, 4, 8], result.Fitting.Select(e => e.Config.Context).Distinct().Order());
        Assert.All(result.Fitting, e =>
        {
            Assert.Equal(64, e.Config.Gpus);
            Assert.Equal(0, 32768 % (2 * e.Config.Context));
        });
        Assert.True(result.Fitting[0].Config.Context > 1);
        Assert.True(
            result.Fitting.Where(e => e.Config.Context == 1).Min(e => e.StepSeconds) > result.Fitting[0].StepSeconds
        );
    }

    [Fact]
    public void EveryConfigurationTheSearchLeavesOutBreaksARuleOrDoesNotFit()
    {
        // A brute force over a small space: every (t, p, d) product of 16 with b in 1..16 is either in the result, or
        // estimated invalid, or does not fit.
        var spec = ModelPresets.DeepSeekLlm7B;
        var cluster = Cluster.Node8(Gpu.A100_80GB);
        var result = ParallelSearch.Search(spec, 4096, cluster, 16, 64);
        var found = result.Fitting.Select(e => e.Config).ToHashSet();
        foreach (var t in new[] { 1, 2, 4, 8, 16 })
        foreach (var p in new[] { 1, 2, 4, 8, 16 })
        {
            if (16 % (t * p) != 0)
                continue;
            foreach (var b in new[] { 1, 2, 4, 8, 16 })
            foreach (var recompute in new[] { Recomputation.None, Recomputation.Selective, Recomputation.Full })
            {
                var config = new ParallelConfig
                {
                    Tensor = t,
                    Pipeline = p,
                    Data = 16 / (t * p),
                    MicroBatch = b,
                    GlobalBatch = 64,
                    Recompute = recompute,
                    Zero = 1,
                };
                var e = ParallelEstimator.Estimate(spec, 4096, cluster, config);
                Assert.Equal(e.Fits, found.Contains(config));
            }
        }
    }

    [Theory]
    [InlineData(0, 8, "GPUs: 0")]
    [InlineData(8, 0, "Global batch: 0")]
    [InlineData(int.MaxValue, 8, "GPUs: 2147483647")]
    public void BadSearchInputIsReportedNotThrown(int gpus, int batch, string expected)
    {
        var result = ParallelSearch.Search(ModelPresets.DeepSeekLlm7B, 4096, Cluster.Node8(Gpu.H100_80GB), gpus, batch);
        Assert.Contains(result.Problems, p => p.Contains(expected));
        Assert.Empty(result.Fitting);
    }
}
