using Explorer.Core.Pipeline;
using Explorer.Model.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public class UnitProfilerTests
{
    private static long[,] Batch(int sequences)
    {
        var random = new Random(6);
        var batch = new long[sequences, 13];
        for (var b = 0; b < sequences; b++)
        for (var t = 0; t < 13; t++)
            batch[b, t] = random.Next(50);
        return batch;
    }

    [Theory]
    [InlineData(1)] // forward and backward of each micro-batch in turn
    [InlineData(4)] // every micro-batch held before the first backward, as GPipe's first stage holds them
    [InlineData(2)]
    public void TheTimedStepAccumulatesTheUnsplitGradients(int inFlight)
    {
        // The timestamps between units (an identity autograd function in the backward) must not change what is
        // computed.
        var batch = Batch(4);
        using var whole = TestModels.Build(TestModels.Small, seed: 3);
        using var timed = TestModels.Build(TestModels.Small, seed: 3);
        whole.train();
        timed.train();
        using var ids = torch.tensor(batch, ScalarType.Int64);
        var logits = whole.Forward(ids.narrow(1, 0, 12));
        nn.functional.cross_entropy(logits.reshape(-1, 50), ids.narrow(1, 1, 12).reshape(-1)).backward();

        var (forward, backward) = UnitProfiler.ChainedStep(timed, batch, microBatches: 4, inFlight);

        var expected = whole.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        foreach (var (name, parameter) in timed.named_parameters())
            Assert.True(
                torch.allclose(expected[name], parameter.grad!, rtol: 1e-4, atol: 1e-6),
                $"gradient of {name} differs"
            );
        var units = TestModels.Small.Layers + 3;
        Assert.Equal(units, forward.Length);
        Assert.All(forward, times => Assert.Equal(4, times.Count));
        Assert.All(backward, times => Assert.Equal(4, times.Count));
        // Each micro-batch's backward is cut into consecutive intervals: none negative.
        Assert.All(backward.SelectMany(t => t), ms => Assert.True(ms >= 0, $"a unit's backward took {ms} ms"));
    }

    [Fact]
    public void EveryUnitGetsCostsAndTheModelIsLeftAsItWas()
    {
        using var decoder = TestModels.Build(TestModels.Small, seed: 5);
        decoder.eval();
        var (units, handOff) = UnitProfiler.ProfileForRun(decoder, 1, 12, stages: 2, ScheduleKind.OneFOneB, sequences =>
            Batch(sequences)
        );

        var analytic = CostModel.Units(decoder.Spec, new CostSettings { SequenceLength = 12, MicroBatchSize = 1 });
        Assert.Equal(
            analytic.Select(u => (u.Name, u.Parameters, u.ActivationBytes)),
            units.Select(u => (u.Name, u.Parameters, u.ActivationBytes))
        );
        Assert.All(units, u =>
            Assert.True(
                u.Forward > 0 && u.InputGradient > 0,
                $"{u.Name}: forward {u.Forward}, backward {u.InputGradient}"
            )
        );
        Assert.True(handOff > 0);
        Assert.False(decoder.training);
        foreach (var (name, parameter) in decoder.named_parameters())
            Assert.True(
                parameter.grad is null || parameter.grad.count_nonzero().item<long>() == 0,
                $"{name} kept a gradient"
            );
    }
}
