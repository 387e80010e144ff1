using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;

namespace Explorer.Cli.Tests;

/// <summary><c>explorer forward --ablate / --skip / --patch --source</c>: the numbering the pages use, the intervened
/// run in --dump.</summary>
public sealed class ForwardInterventionTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-cli-interventions-");

    public void Dispose() => _dir.Delete(recursive: true);

    private float[] DumpedLogits(params string[] args)
    {
        var dump = Path.Combine(_dir.FullName, Guid.NewGuid().ToString("N") + ".json");
        var (code, output, error) = Cli.Run([
            "forward",
            "--model",
            "deepseek-7b-mini",
            "--device",
            "cpu",
            "--dump",
            dump,
            .. args,
        ]);
        Assert.True(code == 0, error + output);
        using var json = JsonDocument.Parse(File.ReadAllText(dump));
        return json.RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
    }

    private static float[] LastLogits(int[] ids, Interventions interventions)
    {
        using var live = LiveModel.Mini(MiniPresets.DeepSeek7BMini, device: "cpu");
        using var input = LiveModel.ToTensor(ids);
        using var logits = live.Decoder.Logits(input, interventions);
        using var last = logits[0, ^1].contiguous();
        return last.data<float>().ToArray();
    }

    [Fact]
    public void AblateNumbersLayersFromOneAndHeadsFromZero()
    {
        var ablated = DumpedLogits("--tokens", "5,17,400,9,5,17", "--ablate", "30.3,1.0");
        var expected = LastLogits(
            [5, 17, 400, 9, 5, 17],
            new Interventions { Heads = [(new HeadSite(29, 3), Ablation.Zero), (new HeadSite(0, 0), Ablation.Zero)] }
        );
        Assert.Equal(expected, ablated);
        Assert.NotEqual(DumpedLogits("--tokens", "5,17,400,9,5,17"), ablated);
    }

    [Fact]
    public void PatchingTheLastLayerEverywhereGivesTheSourceRunsLogits()
    {
        var patched = DumpedLogits("--tokens", "5,17,400,9", "--patch", "30:0,30:1,30:2,30:3", "--source", "9,8,7,6");
        Assert.Equal(DumpedLogits("--tokens", "9,8,7,6"), patched);
    }

    [Fact]
    public void SkipEqualsTheModelWithoutThoseLayers()
    {
        var skipped = DumpedLogits("--tokens", "5,17,400,9", "--skip", "2,15");
        Assert.Equal(LastLogits([5, 17, 400, 9], new Interventions { SkippedLayers = [1, 14] }), skipped);
    }

    [Theory]
    [InlineData(new[] { "--ablate", "31.0" }, "--ablate 31.0: layer '31' must be 1 to 30.")]
    [InlineData(new[] { "--ablate", "3.4" }, "--ablate 3.4: head '4' must be 0 to 3.")]
    [InlineData(new[] { "--ablate", "3" }, "--ablate 3: give LAYER.HEAD")]
    [InlineData(new[] { "--skip", "0" }, "--skip 0: layer '0' must be 1 to 30.")]
    [InlineData(
        new[] { "--patch", "31:0", "--source", "1,2,3" },
        "--patch 31:0: layer '31' must be 0 (the embedding) to 30."
    )]
    [InlineData(new[] { "--patch", "3:3", "--source", "1,2,3" }, "--patch 3:3: position '3' must be 0 to 2.")]
    [InlineData(new[] { "--patch", "3:0", "--source", "1,2" }, "--source has 2 tokens; the prompt has 3")]
    [InlineData(new[] { "--patch", "3:0" }, "--patch L:T and --source IDS go together")]
    [InlineData(new[] { "--patch", "3:0", "--source", "1,2,99999" }, "Token id 99999 is outside")]
    public void BadSitesAreRefusedNamingTheValueAndTheRange(string[] args, string message)
    {
        var (code, _, error) = Cli.Run([
            "forward",
            "--model",
            "deepseek-7b-mini",
            "--device",
            "cpu",
            "--tokens",
            "5,17,400",
            .. args,
        ]);
        Assert.NotEqual(0, code);
        Assert.Contains(message, error);
    }
}
