namespace Explorer.Model.Decoder;

/// <summary>
/// What the logit lens at every position will take, before running it: the lens at one position or a few has already
/// been read and timed (<see cref="DecoderTrace.LastLens"/>, read after the forward for the views, or the forward's own
/// <see cref="DecoderTrace.LensPositions"/>), the same rows through the same final norm and LM head per position. The
/// rest costs as much per position. Batching more rows per block only makes the real lens faster than this estimate
/// (the 7B's at 31 positions: about 1.4 × faster).
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

    /// <summary>The lens at the deferred positions of <paramref name="trace"/> not read yet: priced from its last
    /// position once read, else from the forward's own lens; null when neither has been timed.</summary>
    public static TimeSpan? Estimate(DecoderTrace trace)
    {
        if (trace.LastLens is not null)
            return Estimate(trace.LastLensTime, 1, trace.DeferredLensPositions.Length - 1);
        return trace.LensPositions.Length == 0
            ? null
            : Estimate(trace.LensTime, trace.LensPositions.Length, trace.DeferredLensPositions.Length);
    }
}
