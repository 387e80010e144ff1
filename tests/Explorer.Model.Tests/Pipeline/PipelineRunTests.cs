using Explorer.Core.Pipeline;
using Explorer.Model.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public class PipelineRunTests
{
    private static long[,] Batch()
    {
        var random = new Random(4);
        var batch = new long[4, 13];
        for (var b = 0; b < 4; b++)
        for (var t = 0; t < 13; t++)
            batch[b, t] = random.Next(50);
        return batch;
    }

    [Theory]
    [InlineData(ScheduleKind.GPipe, 2, new[] { 0, 2, 4 })]
    [InlineData(ScheduleKind.OneFOneB, 4, new[] { 0, 2, 4 })]
    [InlineData(ScheduleKind.OneFOneB, 2, new[] { 0, 1, 3, 5 })]
    public void SplitRunEqualsTheUnsplitModel(ScheduleKind schedule, int microBatches, int[] firstUnits)
    {
        var batch = Batch();
        using var whole = TestModels.Build(TestModels.Small, seed: 9);
        using var split = TestModels.Build(TestModels.Small, seed: 9);
        whole.train();
        split.train();

        using var ids = torch.tensor(batch, ScalarType.Int64);
        var logits = whole.Forward(ids.narrow(1, 0, 12));
        var loss = nn.functional.cross_entropy(logits.reshape(-1, 50), ids.narrow(1, 1, 12).reshape(-1));
        loss.backward();

        var result = PipelineRun.TrainStep(split, batch, firstUnits, schedule, microBatches);
        Assert.Equal(loss.item<float>(), result.Loss, 5);
        var expected = whole.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, parameter) in split.named_parameters())
            Assert.True(
                torch.allclose(expected[name], parameter.grad!, rtol: 1e-4, atol: 1e-6),
                $"gradient of {name} differs"
            );
        // Every stage ran a forward and a backward for every micro-batch.
        Assert.Equal(firstUnits.Length * microBatches * 2, result.Timeline.Count);
        // An operation's time starts once its input has arrived: a forward after the previous stage's forward of the
        // same micro-batch, a backward after the next stage's backward (waiting is bubble, not compute).
        var op = result.Timeline.ToDictionary(o => (o.Device, o.MicroBatch, o.Kind));
        foreach (var o in result.Timeline)
        {
            var from = o.Kind == OpKind.Forward ? o.Device - 1 : o.Device + 1;
            if (from >= 0 && from < firstUnits.Length)
                Assert.True(
                    o.Start >= op[(from, o.MicroBatch, o.Kind)].End,
                    $"stage {o.Device} began {o.Kind} of micro-batch {o.MicroBatch} before its input arrived"
                );
        }
    }

    [Fact]
    public void UnevenMicroBatchesAreRefused()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        Assert.Contains(
            "m = 3",
            Assert
                .Throws<ArgumentException>(() => PipelineRun.TrainStep(decoder, Batch(), [0, 3], ScheduleKind.GPipe, 3))
                .Message
        );
        Assert.Contains(
            "simulated only",
            Assert
                .Throws<ArgumentException>(() =>
                    PipelineRun.TrainStep(decoder, Batch(), [0, 3], ScheduleKind.ZeroBubbleH1, 2)
                )
                .Message
        );
    }
}
