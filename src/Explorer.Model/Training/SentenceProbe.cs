using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;

namespace Explorer.Model.Training;

/// <summary>What the lens reads on sentences training never showed: at each layer, how often its top-1 is the next
/// token.</summary>
public sealed record LensAccuracy(double[] ByLayer, int Predictions)
{
    /// <summary>The last layer's accuracy: the model's own next-token accuracy.</summary>
    public double Final => ByLayer[^1];
}

/// <summary>
/// The logit lens on the built-in corpus's held-out sentences (<see cref="BuiltInCorpus.HeldOutSentences"/>), each run
/// alone: the fraction of positions whose lens top-1 at a layer is the token that follows.
/// </summary>
public static class SentenceProbe
{
    public static LensAccuracy Measure(Decoder.Decoder decoder, ITextTokenizer tokenizer)
    {
        var layers = decoder.Spec.Layers;
        var correct = new long[layers];
        var predictions = 0;
        foreach (var sentence in BuiltInCorpus.HeldOutSentences())
        {
            var ids = tokenizer.Encode(sentence).ToArray();
            using var tokens = Hosting.LiveModel.ToTensor(ids);
            using var trace = decoder.Trace(
                tokens,
                TraceOptions.Nothing with
                {
                    LogitLens = true,
                    TopK = 1,
                    LensPositions = Enumerable.Range(0, ids.Length - 1).ToArray(),
                }
            );
            var lens = trace.LogitLens!;
            for (var j = 0; j < ids.Length - 1; j++)
            for (var l = 0; l < layers; l++)
                if (lens[l, j].TopTokens[0] == ids[j + 1])
                    correct[l]++;
            predictions += ids.Length - 1;
        }
        return new LensAccuracy(correct.Select(c => (double)c / predictions).ToArray(), predictions);
    }
}
