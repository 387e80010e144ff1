using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;

namespace Explorer.Model.Tests.Training;

public class SentenceCorpusTests
{
    private static readonly MiniTokenizer Tokenizer = MiniTokenizer.Create();

    [Fact]
    public void AQuarterOfTheSubjectVerbPairsIsHeldOut()
    {
        var held = BuiltInCorpus.HeldOutSentences();
        // 8 subjects × 8 predicates; (s + p) % 4 == 0 keeps two predicates per subject.
        Assert.Equal(16, held.Count);
        Assert.Equal(16, held.Distinct().Count());
        Assert.Contains(" The model reads the attention map.", held); // s 0, p 0
        Assert.DoesNotContain(" The model writes its own output.", held); // s 0, p 1
    }

    [Fact]
    public void TrainingNeverShowsAHeldOutSentenceAndTheVerbDecidesTheObject()
    {
        var corpus = new BuiltInCorpus(Tokenizer, new CorpusMix(Sentences: 1, Repeats: 0, Brackets: 0));
        var batch = corpus.Batch(new Random(11), 64, 128);
        var text = string.Concat(
            Enumerable
                .Range(0, 64)
                .Select(b => Tokenizer.Decode(Enumerable.Range(0, 129).Select(t => (int)batch[b, t]).ToArray()))
        );
        foreach (var sentence in BuiltInCorpus.HeldOutSentences())
            Assert.DoesNotContain(sentence, text);
        var seen = 0;
        foreach (var (verb, obj) in BuiltInCorpus.Predicates)
        {
            var at = text.IndexOf($" {verb} ", StringComparison.Ordinal);
            if (at < 0)
                continue;
            seen++;
            Assert.StartsWith($" {verb} {obj}.", text[at..]);
        }
        Assert.True(seen >= 6, $"only {seen} of 8 verbs in 64 × 128 tokens");
    }

    [Fact]
    public void TheProbeCountsEveryNextTokenOfEverySentence()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Layers = 2 };
        using var decoder = Decoder.Decoder.Create(spec, new DecoderOptions { Seed = 2 });
        var accuracy = SentenceProbe.Measure(decoder, Tokenizer);
        Assert.Equal(BuiltInCorpus.HeldOutSentences().Sum(s => Tokenizer.Encode(s).Count - 1), accuracy.Predictions);
        Assert.Equal(2, accuracy.ByLayer.Length);
        // random weights over 4,096 tokens: almost never right
        Assert.All(accuracy.ByLayer, a => Assert.InRange(a, 0, 0.2));
    }
}
