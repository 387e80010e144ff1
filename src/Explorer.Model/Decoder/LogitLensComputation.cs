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
    /// states (L, P, d) and the final logits at the same P positions (P, V) → entries [layer, position]. Layers go in
    /// chunks of at most ~2M logits (8 MB), so a long prompt's lens never needs (L, P, V) at once; cancellation is
    /// checked between chunks.
    /// </summary>
    public static LogitLensEntry[,] Compute(Decoder decoder, Tensor states, Tensor finalLogits, int topK, CancellationToken cancellation = default)
    {
        using var outer = NewDisposeScope();
        int layers = (int)states.shape[0], positions = (int)states.shape[1], k = Math.Min(topK, decoder.Spec.VocabularySize);
        var result = new LogitLensEntry[layers, positions];
        var finalLog = finalLogits.to(ScalarType.Float32).log_softmax(-1); // (P, V)
        var finalP = finalLog.exp();
        var chunk = (int)Math.Max(1, (2L << 20) / ((long)positions * decoder.Spec.VocabularySize));
        for (var start = 0; start < layers; start += chunk)
        {
            cancellation.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var count = Math.Min(chunk, layers - start);
            var log = decoder.Head(states.narrow(0, start, count)).to(ScalarType.Float32).log_softmax(-1); // (C, P, V)
            var p = log.exp();
            var entropy = -(p * log).sum(-1);                                                       // (C, P)
            var kl = (finalP * (finalLog - log)).sum(-1);                                           // KL(p_L ‖ p_l)
            var (values, ids) = p.topk(k, 2, true, true);                                           // (C, P, k)
            var ent = entropy.to(CPU).data<float>().ToArray();
            var kls = kl.to(CPU).data<float>().ToArray();
            var vals = values.to(CPU).data<float>().ToArray();
            var idx = ids.to(CPU).data<long>().ToArray();
            for (var c = 0; c < count; c++)
                for (var j = 0; j < positions; j++)
                {
                    var at = c * positions + j;
                    var top = new int[k];
                    var probs = new float[k];
                    for (var r = 0; r < k; r++)
                    {
                        top[r] = (int)idx[at * k + r];
                        probs[r] = vals[at * k + r];
                    }
                    result[start + c, j] = new LogitLensEntry(top, probs, ent[at], Math.Max(0, kls[at]));
                }
        }
        return result;
    }
}
