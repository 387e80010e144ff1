using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Training;
using Explorer.Model.Weights;

namespace Explorer.Model.Tests;

/// <summary>A test of the shipped trained minis; skipped, saying so, in a build that ships none yet.</summary>
public sealed class TrainedDefaultsFactAttribute : FactAttribute
{
    public TrainedDefaultsFactAttribute()
    {
        if (!MiniPresets.All.Any(s => TrainedDefaults.Find(s) is not null))
            Skip =
                $"No trained minis ship in this build ({TrainedDefaults.Folder} is empty): `explorer "
                + "train-defaults` makes them.";
    }
}

public sealed class TrainedDefaultsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-defaults-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [TrainedDefaultsFact]
    public void BothMinisShipWithinTwentyFiveMegabytesWithTheirHeadsAndSpeakTheirSentences()
    {
        foreach (var spec in MiniPresets.All)
            Assert.True(TrainedDefaults.Find(spec) is not null, $"{spec.Name} is not in {TrainedDefaults.Folder}");
        var bytes = new DirectoryInfo(TrainedDefaults.Folder)
            .EnumerateFiles("*", SearchOption.AllDirectories)
            .Sum(f => f.Length);
        Assert.InRange(bytes, 1, 25_000_000);
        foreach (var spec in MiniPresets.All)
        {
            using var live = LiveModel.Mini(spec);
            Assert.StartsWith("trained", live.Source);
            var scores = AttentionProbe.Measure(live.Decoder);
            var induction = scores.MaxBy(s => s.Induction)!;
            var previous = scores.MaxBy(s => s.PreviousToken)!;
            Assert.True(
                induction.Induction >= AttentionProbe.HeadThreshold,
                $"best induction head of {spec.Name}: {induction}"
            );
            Assert.True(
                previous.PreviousToken >= AttentionProbe.HeadThreshold,
                $"best previous-token head of {spec.Name}: {previous}"
            );
            // The record shipped beside the weights says what this measurement finds.
            var record = JsonSerializer.Deserialize<DefaultsRecord>(
                File.ReadAllText(Path.Combine(TrainedDefaults.Find(spec)!, TrainedDefaults.RecordFile))
            )!;
            // Within a tolerance, not after rounding: another CPU's last bits must not flip a rounding edge.
            Assert.Equal(record.BestInduction.Induction, induction.Induction, 1e-3);
            Assert.Equal(record.BestPreviousToken.PreviousToken, previous.PreviousToken, 1e-3);

            // Second phase: on template sentences training never showed, the last layer's lens top-1 is the next token
            // most of the time (the subject and the verb are free choices; the rest follows from the verb).
            var accuracy = SentenceProbe.Measure(live.Decoder, live.Tokenizer!);
            Assert.True(
                accuracy.Final >= 0.5,
                $"{spec.Name}: lens top-1 = next token on held-out sentences {accuracy.Final:P1}"
            );
            var speaking = record.Speaking
                ?? throw new Xunit.Sdk.XunitException($"{spec.Name}'s training.json records no sentence phase.");
            // a prediction either way at most
            Assert.Equal(speaking.LensAccuracy, accuracy.Final, 2.0 / accuracy.Predictions);
        }
    }

    [Fact]
    public void ATrainedCheckpointLoadsUnderThePresetsNameInFp32()
    {
        var spec = TestModels.Small with { Name = "tiny-preset" };
        using (var decoder = Decoder.Decoder.Create(spec, new Decoder.DecoderOptions { Seed = 3 }))
            Checkpoint.Save(decoder, Path.Combine(_dir, spec.Name), TorchSharp.torch.ScalarType.BFloat16);
        using var live = TrainedDefaults.Load(spec, folder: _dir);
        Assert.Equal(spec, live.Spec);
        Assert.Equal(TorchSharp.torch.ScalarType.Float32, live.Decoder.DType);
        Assert.Equal("trained (defaults/tiny-preset)", live.Source);
    }

    [Fact]
    public void AShippedCheckpointOfAnotherShapeIsRefusedWithBothShapes()
    {
        var spec = TestModels.Small with { Name = "tiny-preset" };
        using (var decoder = Decoder.Decoder.Create(spec with { HiddenSize = spec.HiddenSize * 2 }))
            Checkpoint.Save(decoder, Path.Combine(_dir, spec.Name));
        var e = Assert.Throws<CheckpointException>(() => TrainedDefaults.Load(spec, folder: _dir));
        Assert.Contains($"d{spec.HiddenSize * 2}", e.Message);
        Assert.Contains($"d{spec.HiddenSize} ", e.Message);
        Assert.Contains("train-defaults", e.Message);
    }

    [Fact]
    public void WithoutShippedWeightsAMiniStartsFromItsSeed()
    {
        Assert.Null(TrainedDefaults.Find(MiniPresets.DeepSeek7BMini, _dir));
        using var live = LiveModel.Mini(MiniPresets.DeepSeek7BMini, seed: 5, trained: false);
        Assert.Equal("seed 5", live.Source);
    }
}
