using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>
/// The logit lens: each layer's residual state read through the final norm and LM head, p_l = softmax(W_U · norm(h_l)),
/// with its top tokens, entropy and KL(p_L ‖ p_l) to the model's own final distribution.
/// </summary>
internal static class LogitLensComputation
{
    /// <summary>
    /// Most logits in one block: 30 MiB in fp32, just under the 32 MiB above which glibc's malloc maps fresh memory
    /// (the most <c>ProcessMemory.Configure</c> can ask): larger temporaries are page-faulted in afresh on every op,
    /// which then dominates the lens; smaller blocks read the LM head more often.
    /// </summary>
    private const long ChunkLogits = (30L << 20) / sizeof(float);

    /// <summary>
    /// states (L, P, d) and the final logits at the same P positions (P, V) → entries [layer, position]. Work goes in
    /// blocks of layers × positions of at most <see cref="ChunkLogits"/> logits, so a long prompt's lens never needs
    /// (L, P, V) at once and every temporary stays small enough for the allocator to reuse. Cancellation is checked
    /// between blocks.
    /// </summary>
    public static LogitLensEntry[,] Compute(
        Decoder decoder,
        Tensor states,
        Tensor finalLogits,
        int topK,
        CancellationToken cancellation = default
    )
    {
        using var outer = NewDisposeScope();
        int layers = (int)states.shape[0],
            positions = (int)states.shape[1],
            k = Math.Min(topK, decoder.Spec.VocabularySize);
        long vocabulary = decoder.Spec.VocabularySize;
        var result = new LogitLensEntry[layers, positions];
        var positionBlock = (int)Math.Clamp(ChunkLogits / vocabulary, 1, positions);
        var layerBlock = (int)Math.Clamp(ChunkLogits / (positionBlock * vocabulary), 1, layers);
        for (var from = 0; from < positions; from += positionBlock)
        {
            var width = Math.Min(positionBlock, positions - from);
            using var block = NewDisposeScope();
            var finalLog = finalLogits.narrow(0, from, width).to(ScalarType.Float32).log_softmax(-1); // (P', V)
            var finalP = finalLog.exp();
            var blockStates = states.narrow(1, from, width); // (L, P', d)
            for (var start = 0; start < layers; start += layerBlock)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var count = Math.Min(layerBlock, layers - start);
                // (C, P', V)
                var log = decoder.Head(blockStates.narrow(0, start, count)).to(ScalarType.Float32).log_softmax(-1);
                var p = log.exp();
                var entropy = -(p * log).sum(-1); // (C, P')
                var kl = (finalP * (finalLog - log)).sum(-1); // KL(p_L ‖ p_l)
                var (values, ids) = p.topk(k, 2, true, true); // (C, P', k)
                var ent = entropy.to(CPU).data<float>().ToArray();
                var kls = kl.to(CPU).data<float>().ToArray();
                var vals = values.to(CPU).data<float>().ToArray();
                var idx = ids.to(CPU).data<long>().ToArray();
                for (var c = 0; c < count; c++)
                for (var j = 0; j < width; j++)
                {
                    var at = c * width + j;
                    var top = new int[k];
                    var probs = new float[k];
                    for (var r = 0; r < k; r++)
                    {
                        top[r] = (int)idx[at * k + r];
                        probs[r] = vals[at * k + r];
                    }
                    result[start + c, from + j] = new LogitLensEntry(top, probs, ent[at], Math.Max(0, kls[at]));
                }
            }
        }
        return result;
    }
}
