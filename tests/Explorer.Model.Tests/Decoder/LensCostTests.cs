using Explorer.Model.Decoder;

namespace Explorer.Model.Tests;

public class LensCostTests
{
    [Fact]
    public void TheLensCostsAsMuchPerPositionAsTheForwardsOwn()
    {
        // 1 position in 30 ms: 31 positions take 31 × as long; 4 positions in 40 ms, 10 take 100 ms.
        Assert.Equal(TimeSpan.FromMilliseconds(930), LensCost.Estimate(TimeSpan.FromMilliseconds(30), 1, 31));
        Assert.Equal(TimeSpan.FromMilliseconds(100), LensCost.Estimate(TimeSpan.FromMilliseconds(40), 4, 10));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => LensCost.Estimate(TimeSpan.Zero, 0, 3));
        Assert.Contains("0 positions measured", error.Message);
    }

    [Fact]
    public void ATraceTimesItsOwnLensAndEstimatesTheRestFromIt()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(1, 2, 3, 4, 5, 6, 7, 8);
        using var trace = decoder.Trace(tokens, TraceOptions.ForViews(8));
        Assert.True(trace.LensTime > TimeSpan.Zero);
        Assert.Equal(
            trace.LensTime * ((double)trace.DeferredLensPositions.Length / trace.LensPositions.Length),
            LensCost.Estimate(trace)
        );
    }
}
