using Explorer.Core.Formatting;

namespace Explorer.Model.Hosting;

/// <summary>How a checkpoint's weights are asked to be held.</summary>
public enum PlacementRequest
{
    /// <summary>Resident when the weights fit in memory with room for traces; streamed otherwise.</summary>
    Auto,
    Resident,

    /// <summary>Layer by layer from the files, even when the model would fit.</summary>
    Streamed,
}

/// <summary>Where a loaded model's layers live, and the sentence that says why (for the Models page and the prompt
/// bar).</summary>
public sealed record Placement(bool Streamed, string Reason)
{
    /// <summary>Memory kept free beside a resident model's weights for a forward's working memory and the
    /// traces.</summary>
    public static long TraceRoom(long traceCacheBytes) => traceCacheBytes + (1L << 30);

    /// <summary>
    /// Decides resident or streamed. Resident when asked, or when <paramref name="residentBytes"/> and
    /// <paramref name="traceRoomBytes"/> fit in <paramref name="availableBytes"/>; streamed when asked or otherwise.
    /// Whether a streamed model fits at all is the loader's to check (it refuses with both figures).
    /// </summary>
    public static Placement Choose(
        PlacementRequest request,
        long residentBytes,
        long streamedBytes,
        long availableBytes,
        long traceRoomBytes
    )
    {
        string Weights() => $"its {Units.Bytes(residentBytes)} of weights";
        var fits = residentBytes + traceRoomBytes <= availableBytes;
        return request switch
        {
            PlacementRequest.Resident => new(false, $"resident, as asked: {Weights()} in memory"),
            PlacementRequest.Streamed => new(
                true,
                $"streamed, as asked: layer by layer from its files, {Units.Bytes(streamedBytes)} in memory"
                    + (fits ? $" ({Weights()} would fit)" : "")
            ),
            _ when fits => new(
                false,
                $"resident: {Weights()} fit in the {Units.Bytes(availableBytes)} available with "
                    + $"{Units.Bytes(traceRoomBytes)} left for traces"
            ),
            _ => new(
                true,
                $"streamed layer by layer: {Weights()} and {Units.Bytes(traceRoomBytes)} for traces do not fit in the "
                    + $"{Units.Bytes(availableBytes)} available; streaming holds {Units.Bytes(streamedBytes)}"
            ),
        };
    }
}
