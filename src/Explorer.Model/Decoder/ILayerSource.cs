namespace Explorer.Model.Decoder;

/// <summary>
/// Where a decoder finds layers it does not hold (a streamed checkpoint, <c>Weights.LayerStream</c>): a forward asks
/// for each layer in order and says when it is done with it. The decoder owns its source.
/// </summary>
public interface ILayerSource : IDisposable
{
    /// <summary>A forward starts: the source can begin reading its first layers.</summary>
    void BeginForward();

    /// <summary>Layer <paramref name="layer"/>, ready to run; throws what went wrong reading it.</summary>
    DecoderLayer Acquire(int layer, CancellationToken cancellation);

    /// <summary>
    /// A pass from the last layer down starts (a backward, layer by layer): the source reads the last layers first and,
    /// as each is released, the one below.
    /// </summary>
    void BeginBackward();

    /// <summary>The pass is done with layer <paramref name="layer"/>.</summary>
    void Release(int layer);

    /// <summary>The forward has ended (finished, failed or cancelled): waits until no read is under way.</summary>
    void Settle();
}
