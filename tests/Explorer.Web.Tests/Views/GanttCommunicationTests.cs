using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class GanttCommunicationTests
{
    private static readonly ModelSpec Model = ModelPresets.DeepSeekLlm67B;
    private const int Sequence = 4096;

    private static (GanttCommunication Comm, StagePlan Plan, ParallelChoice Choice) Build(ParallelConfig config)
    {
        var cluster = Cluster.Node8(Gpu.H200);
        var units = ParallelEstimator.Units(Model, Sequence, cluster, config);
        var stages = config.Pipeline * config.VirtualStages;
        var plan = BalancedPartitioner.Optimal().Partition(units, stages).Plan!;
        var choice = new ParallelChoice(cluster, ParallelEstimator.Estimate(Model, Sequence, cluster, config));
        return (GanttCommunication.For(Model, Sequence, choice, plan), plan, choice);
    }

    [Fact]
    public void TheTensorParallelShareIsTheRingAllReducesOfEveryLayerOnTheDevice()
    {
        var config = new ParallelConfig
        {
            Tensor = 2,
            Pipeline = 4,
            Data = 8,
            GlobalBatch = 256,
            SequenceParallel = true,
            Recompute = Recomputation.Selective,
            Zero = 1,
        };
        var (comm, plan, _) = Build(config);

        // One ring all-reduce of the b·s·h bf16 activations over t = 2 GPUs on NVLink (450 GB/s at 80%, 10 µs a step):
        // 2(t−1) latencies and 2(t−1)/t of the bytes; 2 of them in a layer's forward and 2 in its backward.
        var bytes = 2.0 * 1 * Sequence * Model.HiddenSize;
        var allReduceMs = 1e3 * (2 * 1 * 10e-6 + 2.0 * 1 / 2 * bytes / (450e9 * 0.8));
        for (var device = 0; device < 4; device++)
        {
            var stage = plan.Stages[device];
            var layers = Enumerable
                .Range(stage.FirstUnit, stage.UnitCount)
                .Count(u => plan.Units[u].Kind == UnitKind.Layer);
            Assert.Equal(layers * 2 * allReduceMs, comm.ForwardShare[device] * stage.Forward, 6);
            Assert.Equal(
                layers * 2 * allReduceMs,
                comm.BackwardShare[device] * (stage.InputGradient + stage.WeightGradient),
                6
            );
            Assert.Equal(layers * 2 * allReduceMs, comm.InputGradientShare[device] * stage.InputGradient, 6);
        }
        Assert.Contains("reduce-scatter", comm.DataParallelName);
    }

    [Fact]
    public void FullRecomputationRepeatsTheForwardCollectivesInTheBackward()
    {
        var (full, plan, _) = Build(
            new ParallelConfig
            {
                Tensor = 4,
                Pipeline = 2,
                Data = 8,
                GlobalBatch = 256,
                Recompute = Recomputation.Full,
            }
        );
        var stage = plan.Stages[1];
        // 2 forward, 2 + 2 (recomputed forward) backward: the backward carries twice the forward's communication.
        Assert.Equal(
            2 * full.ForwardShare[1] * stage.Forward,
            full.BackwardShare[1] * (stage.InputGradient + stage.WeightGradient),
            6
        );
    }

    [Fact]
    public void WithoutTensorParallelismOnlyTheDataParallelReductionIsDrawn()
    {
        var (comm, _, choice) = Build(
            new ParallelConfig
            {
                Tensor = 1,
                Pipeline = 8,
                Data = 8,
                GlobalBatch = 256,
                Recompute = Recomputation.Full,
                Zero = 0,
            }
        );
        Assert.All(comm.ForwardShare.Concat(comm.BackwardShare), share => Assert.Equal(0, share));
        Assert.True(comm.DataParallelMs > 0);
        Assert.Equal(choice.Estimate.Time!.DataComm * 1e3, comm.DataParallelMs, 9);
        Assert.Equal("data-parallel gradient all-reduce", comm.DataParallelName);
    }
}
