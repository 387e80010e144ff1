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
    public void AViewsTraceIsPricedFromItsLastPositionOnceRead()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(1, 2, 3, 4, 5, 6, 7, 8);
        using var trace = decoder.Trace(tokens, TraceOptions.ForViews(8));
        Assert.Null(LensCost.Estimate(trace)); // nothing timed yet
        trace.ReadLastLens(decoder);
        Assert.True(trace.LastLensTime > TimeSpan.Zero);
        // The other 7 positions, each as long as the last.
        Assert.Equal(trace.LastLensTime * 7, LensCost.Estimate(trace));
    }

    [Fact]
    public void ATraceWithItsOwnLensIsPricedFromIt()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(1, 2, 3, 4, 5, 6, 7, 8);
        using var trace = decoder.Trace(
            tokens,
            new TraceOptions { LensPositions = [6, 7], DeferredLensPositions = [0, 1, 2, 3, 4, 5, 6, 7] }
        );
        Assert.True(trace.LensTime > TimeSpan.Zero);
        Assert.Equal(trace.LensTime * (8 / 2.0), LensCost.Estimate(trace));
    }
}
