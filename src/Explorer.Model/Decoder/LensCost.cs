namespace Explorer.Model.Decoder;

/// <summary>
/// What the logit lens at every position will take, before running it: the forward already read its own positions
/// through the lens (the last, for the views), the same rows through the same final norm and LM head per position, and
/// timed it (<see cref="DecoderTrace.LensTime"/>). The rest costs as much per position. Batching more rows per block
/// only makes the real lens faster than this estimate (the 7B's at 31 positions: about 1.4 × faster).
/// </summary>
public static class LensCost
{
    /// <summary>The lens at <paramref name="positions"/> positions, from <paramref name="measured"/> positions that
    /// took <paramref name="measuredTime"/>.</summary>
    public static TimeSpan Estimate(TimeSpan measuredTime, int measured, int positions)
    {
        if (measured < 1 || positions < 0)
            throw new ArgumentOutOfRangeException(
                nameof(measured),
                $"{measured} positions measured, {positions} to estimate: at least one measured, none negative."
            );
        return measuredTime * ((double)positions / measured);
    }

    /// <summary>The lens at every deferred position of <paramref name="trace"/>.</summary>
    public static TimeSpan Estimate(DecoderTrace trace) =>
        trace.LensPositions.Length == 0
            ? TimeSpan.Zero
            : Estimate(trace.LensTime, trace.LensPositions.Length, trace.DeferredLensPositions.Length);
}
