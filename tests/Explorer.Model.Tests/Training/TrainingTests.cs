using Explorer.Core.Specs;
using Explorer.Model.Tokenization;
using Explorer.Model.Training;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public sealed class TrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Sequences that count up modulo the vocabulary: learnable in a few steps.</summary>
    private sealed class CountingCorpus(int vocabulary) : ITrainingCorpus
    {
        public string Name => "counting";

        public long[,] Batch(Random random, int batch, int length)
        {
            var result = new long[batch, length + 1];
            for (var b = 0; b < batch; b++)
            {
                var start = random.Next(vocabulary);
                for (var t = 0; t <= length; t++)
                    result[b, t] = (start + t) % vocabulary;
            }
            return result;
        }
    }

    private static readonly TrainingOptions Quick = new()
    {
        Steps = 40,
        BatchSize = 8,
        SequenceLength = 16,
        LearningRate = 3e-3,
        WarmupSteps = 5,
        CheckpointEvery = 0,
    };

    [Fact]
    public async Task LossFallsWithinAFewSteps()
    {
        using var decoder = Decoder.Decoder.Create(TestModels.Small, new Decoder.DecoderOptions { Seed = 1 });
        var losses = new List<double>();
        var last = await Trainer.TrainAsync(
            decoder,
            new CountingCorpus(50),
            Quick,
            null,
            new SyncProgress<TrainingProgress>(p => losses.Add(p.Loss)),
            CancellationToken.None
        );
        Assert.Equal(40, losses.Count);
        Assert.True(losses[0] > Math.Log(50) * 0.8, $"first loss {losses[0]}"); // about uniform over 50 tokens
        Assert.True(last < losses[0] * 0.6, $"loss went from {losses[0]} to {last}");
        Assert.True(losses.TakeLast(5).Average() < losses.Take(5).Average() - 1, "the loss curve falls");
    }

    [Fact]
    public async Task CheckpointsRoundTripAndLatestPointsAtTheNewest()
    {
        using var decoder = Decoder.Decoder.Create(TestModels.Small, new Decoder.DecoderOptions { Seed = 1 });
        var saved = new List<string>();
        await Trainer.TrainAsync(
            decoder,
            new CountingCorpus(50),
            Quick with
            {
                Steps = 10,
                CheckpointEvery = 5,
            },
            _dir,
            new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Checkpoint is { } c)
                    saved.Add(c);
            }),
            CancellationToken.None
        );
        Assert.Equal([Path.Combine(_dir, "step-000005"), Path.Combine(_dir, "step-000010")], saved);
        var latest = Trainer.Latest(_dir)!.Value;
        Assert.Equal(10, latest.Step);
        using var loaded = Checkpoint.Load(latest.Directory);
        using var tokens = TestModels.Tokens(1, 2, 3, 4);
        Assert.Equal(TestModels.ToArray(decoder.Logits(tokens)), TestModels.ToArray(loaded.Logits(tokens)));
    }

    [Fact]
    public async Task AnInterruptedWriteLeavesThePreviousCheckpoint()
    {
        using var decoder = Decoder.Decoder.Create(TestModels.Small, new Decoder.DecoderOptions { Seed = 1 });
        await Trainer.TrainAsync(
            decoder,
            new CountingCorpus(50),
            Quick with
            {
                Steps = 5,
                CheckpointEvery = 5,
            },
            _dir,
            null,
            CancellationToken.None
        );
        // A crash in the middle of writing step 10: a half-written temporary folder, and latest not yet moved.
        var partial = Directory.CreateDirectory(Path.Combine(_dir, "step-000010.tmp")).FullName;
        File.WriteAllBytes(Path.Combine(partial, "model.safetensors"), [1, 2, 3]);
        File.WriteAllText(Path.Combine(_dir, "latest.tmp"), "step-0000");
        var latest = Trainer.Latest(_dir)!.Value;
        Assert.Equal(5, latest.Step);
        using var loaded = Checkpoint.Load(latest.Directory);
        Assert.Equal(TestModels.Small.Layers, loaded.Spec.Layers);
        // Training resumes from it and writes step 10 over the debris.
        await Trainer.TrainAsync(
            loaded,
            new CountingCorpus(50),
            Quick with
            {
                Steps = 10,
                CheckpointEvery = 5,
            },
            _dir,
            null,
            CancellationToken.None,
            startStep: 5
        );
        Assert.Equal(10, Trainer.Latest(_dir)!.Value.Step);
        Assert.False(Directory.Exists(partial));
    }

    [Fact]
    public async Task ACheckpointOfAMiniShapeLoadsWithTheMiniTokenizer()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Name = "mini-like", Layers = 2 };
        using var decoder = Decoder.Decoder.Create(spec, new Decoder.DecoderOptions { Seed = 1 });
        await Trainer.TrainAsync(
            decoder,
            new CountingCorpus(4096),
            Quick with
            {
                Steps = 1,
            },
            _dir,
            null,
            CancellationToken.None
        );
        using var live = Explorer.Model.Hosting.LiveModel.FromCheckpoint(Trainer.Latest(_dir)!.Value.Directory);
        Assert.Equal("mini-bpe-4k", live.Tokenizer!.Name);
        Assert.NotEmpty(live.Encode("text works", 64));
    }

    [Fact]
    public async Task CancellationStopsTraining()
    {
        using var decoder = Decoder.Decoder.Create(TestModels.Small, new Decoder.DecoderOptions { Seed = 1 });
        using var cts = new CancellationTokenSource();
        var steps = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Trainer.TrainAsync(
                decoder,
                new CountingCorpus(50),
                Quick,
                null,
                new SyncProgress<TrainingProgress>(p =>
                {
                    if (++steps == 3)
                        cts.Cancel();
                }),
                cts.Token
            )
        );
        Assert.Equal(3, steps);
    }

    [Fact]
    public void LearningRateWarmsUpThenFollowsTheCosine()
    {
        var o = new TrainingOptions
        {
            Steps = 110,
            LearningRate = 1e-3,
            WarmupSteps = 10,
            MinLearningRateRatio = 0.1,
        };
        Assert.Equal(1e-4, o.LearningRateAt(0), 12); // (0 + 1)/10 of the peak
        Assert.Equal(1e-3, o.LearningRateAt(9), 12);
        Assert.Equal(1e-3, o.LearningRateAt(10), 12); // cosine starts at the peak
        Assert.Equal(1e-4 + 0.9e-3 * 0.5 * (1 + Math.Cos(Math.PI * 50 / 99.0)), o.LearningRateAt(60), 12);
        Assert.Equal(1e-4, o.LearningRateAt(109), 12); // and ends at 10% of it
    }

    [Fact]
    public void BadOptionsAreNamed()
    {
        var e = Assert.Throws<AggregateException>(() =>
            Trainer
                .TrainAsync(
                    TestModels.Build(TestModels.Tiny),
                    new CountingCorpus(11),
                    new TrainingOptions { Steps = 0, LearningRate = 5 },
                    null,
                    null,
                    CancellationToken.None
                )
                .Wait()
        );
        Assert.Contains("steps 0", e.InnerException!.Message);
        Assert.Contains("learning rate 5", e.InnerException.Message);
    }
}

public class CorpusTests
{
    private static readonly MiniTokenizer Tokenizer = MiniTokenizer.Create();

    [Fact]
    public void BuiltInCorpusIsDeterministicAndInVocabulary()
    {
        var corpus = new BuiltInCorpus(Tokenizer);
        var a = corpus.Batch(new Random(3), 4, 64);
        var b = corpus.Batch(new Random(3), 4, 64);
        Assert.Equal(a, b);
        Assert.Equal([4, 65], new[] { a.GetLength(0), a.GetLength(1) });
        foreach (var id in a)
            Assert.InRange(id, 0, MiniPresets.Vocabulary - 1);
    }

    [Fact]
    public void UploadedTextIsCheckedAndWindowed()
    {
        var text = TextFileCorpus.FromBytes(
            "t.txt",
            "one two three four five six seven eight nine ten"u8,
            Tokenizer,
            5
        );
        var batch = text.Batch(new Random(1), 2, 4);
        Assert.Equal(5, batch.GetLength(1));
        Assert.Contains(
            "not UTF-8",
            Assert
                .Throws<ArgumentException>(() =>
                    TextFileCorpus.FromBytes("x.txt", new byte[] { 0xC3, 0x28 }, Tokenizer, 2)
                )
                .Message
        );
        Assert.Contains(
            "needs at least 100",
            Assert.Throws<ArgumentException>(() => TextFileCorpus.FromBytes("s.txt", "short"u8, Tokenizer, 100)).Message
        );
        Assert.Contains(
            "at most",
            Assert
                .Throws<ArgumentException>(() =>
                    TextFileCorpus.FromBytes("big.txt", new byte[TextFileCorpus.MaxBytes + 1], Tokenizer, 2)
                )
                .Message
        );
    }
}

public class AttentionProbeTests
{
    [Fact]
    public void InductionScoreReadsTheTokenAfterTheEarlierOccurrence()
    {
        // n = 4, T = 8: a perfect induction head puts all weight on i − n + 1 in the second copy; uniform elsewhere.
        const int n = 4,
            t = 8;
        var map = new float[t * t];
        for (var i = 0; i < t; i++)
        for (var j = 0; j <= i; j++)
            map[i * t + j] = i >= n ? (j == i - n + 1 ? 1 : 0) : 1f / (i + 1);
        Assert.Equal(1.0, AttentionProbe.InductionScore(map, n), 9);
        // Its previous-token score: rows 1..3 give 1/(i+1), rows 4..7 put no weight on i − 1 → (1/2 + 1/3 + 1/4) / 7.
        Assert.Equal((1 / 2.0 + 1 / 3.0 + 1 / 4.0) / 7, AttentionProbe.PreviousTokenScore(map, t), 6);
    }

    [Fact]
    public void PreviousTokenHeadScoresOne()
    {
        const int t = 6;
        var map = new float[t * t];
        map[0] = 1;
        for (var i = 1; i < t; i++)
            map[i * t + i - 1] = 1;
        Assert.Equal(1.0, AttentionProbe.PreviousTokenScore(map, t), 9);
        Assert.Equal(0.0, AttentionProbe.InductionScore(map, 3), 9);
        var probe = AttentionProbe.RepeatedTokens(5, 4096);
        Assert.Equal(probe.Take(5), probe.Skip(5));
    }
}

public class ProbeMeasureTests
{
    [Fact]
    public void EveryHeadIsScoredAgainstItsOwnMap()
    {
        using var decoder = TestModels.Build(TestModels.Small with { VocabularySize = 400 }, seed: 2);
        var scores = AttentionProbe.Measure(decoder, n: 6);
        Assert.Equal(3 * 4, scores.Count);
        var ids = AttentionProbe.RepeatedTokens(6, 400);
        using var trace = decoder.Trace(
            TestModels.Tokens(ids.Select(i => (long)i).ToArray()),
            Decoder.TraceOptions.Everything
        );
        var s = scores.Single(x => x.Layer == 1 && x.Head == 2);
        Assert.Equal(AttentionProbe.InductionScore(trace.HeadMap(1, 2), 6), s.Induction, 9);
        Assert.Equal(trace.PreviousTokenScore![1, 2], s.PreviousToken, 2); // the trace's own summary, from the fp16 map
    }
}
