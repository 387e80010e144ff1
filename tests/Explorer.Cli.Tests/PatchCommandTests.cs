using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Training;

namespace Explorer.Cli.Tests;

/// <summary><c>explorer patch</c> on the shipped 30-layer mini: an induction prompt whose answer the corruption
/// flips.</summary>
public sealed class PatchCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-cli-patch-");

    public void Dispose() => _dir.Delete(recursive: true);

    // 12 random tokens, then their first 6 again: the answer is the 7th (1344). Corrupted: the 7th replaced by 2222,
    // which induction then predicts instead.
    private const string Clean = "850,2631,3771,3586,3428,558,1344,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558";
    private const string Corrupted =
        "850,2631,3771,3586,3428,558,2222,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558";

    private JsonElement Sweep(string kind, params string[] more)
    {
        var file = Path.Combine(_dir.FullName, kind + string.Concat(more) + ".json");
        var (code, output, error) = Cli.Run([
            "patch",
            "--model",
            "deepseek-7b-mini",
            "--ids",
            "--clean",
            Clean,
            "--corrupted",
            Corrupted,
            "--answer",
            "1344",
            "--wrong",
            "2222",
            "--sweep",
            kind,
            "--json",
            file,
            .. more,
        ]);
        Assert.True(code == 0, error + output);
        return JsonDocument.Parse(File.ReadAllText(file)).RootElement;
    }

    private static double[][] Rows(JsonElement sweep) =>
        sweep
            .GetProperty("rows")
            .EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray())
            .ToArray();

    [Fact]
    public void TheHeadWhoseAblationCostsTheAnswerMostIsTheProbesBestInductionHead()
    {
        var rows = Rows(Sweep("heads"));
        Assert.Equal(30, rows.Length);
        Assert.All(rows, r => Assert.Equal(4, r.Length));
        var (layer, head) = Enumerable
            .Range(0, 30)
            .SelectMany(l => Enumerable.Range(0, 4).Select(h => (l, h)))
            .MinBy(s => rows[s.l][s.h]);
        using var live = LiveModel.Mini(MiniPresets.DeepSeek7BMini, device: "cpu");
        var best = AttentionProbe.Measure(live.Decoder).MaxBy(s => s.Induction)!;
        Assert.Equal((best.Layer, best.Head), (layer, head));
        Assert.True(rows[layer][head] < -1, $"ablating it moved the logit difference by {rows[layer][head]:0.000}");
    }

    [Fact]
    public void ResidualPatchingRestoresTheAnswerInFullAtTheLastPositionAfterTheLastLayer()
    {
        var sweep = Sweep("residual");
        var rows = Rows(sweep);
        Assert.Equal(31, rows.Length); // the embedding and the state after each of 30 layers
        Assert.Equal(1.0, rows[30][17], 6);
        Assert.All(rows[30].Take(17), v => Assert.Equal(0.0, v, 6));
        // only token 6 differs at the embedding
        Assert.All(rows[0].Where((_, p) => p != 6), v => Assert.Equal(0.0, v, 6));
        Assert.True(
            sweep.GetProperty("cleanMetric").GetDouble() > 0 && sweep.GetProperty("corruptedMetric").GetDouble() < 0,
            "the corruption flips the answer"
        );
    }

    [Fact]
    public void TheAnswersProbabilityAndTheNoisingDirectionAreMeasuredAsDefined()
    {
        // Probability: the clean run gives the answer more probability than the corrupted run does; the last position
        // after the last layer still restores it in full.
        var probability = Sweep("residual", "--metric", "probability");
        Assert.Contains("the answer's probability", probability.GetProperty("metric").GetString());
        double clean = probability.GetProperty("cleanMetric").GetDouble(),
            corrupted = probability.GetProperty("corruptedMetric").GetDouble();
        Assert.InRange(corrupted, 0, clean);
        Assert.InRange(clean, corrupted, 1);
        Assert.Equal(1.0, Rows(probability)[30][17], 5);

        // Noising: the corrupted run patched into the clean one, the answers swapped, so its clean metric is the
        // denoising run's corrupted one negated (logit 2222 − logit 1344 on the corrupted prompt).
        var denoise = Sweep("residual");
        var noise = Sweep("residual", "--direction", "noise");
        Assert.Equal(
            -denoise.GetProperty("corruptedMetric").GetDouble(),
            noise.GetProperty("cleanMetric").GetDouble(),
            5
        );
        Assert.Equal(
            -denoise.GetProperty("cleanMetric").GetDouble(),
            noise.GetProperty("corruptedMetric").GetDouble(),
            5
        );
        Assert.Equal(1.0, Rows(noise)[0][6], 5); // the one token that differs, at the embedding
    }

    [Fact]
    public void AttributionPatchingRunsTheResidualSweepAndSaysHowItRanksAgainstExact()
    {
        var (code, output, error) = Cli.Run(
            "patch",
            "--model",
            "deepseek-7b-mini",
            "--ids",
            "--clean",
            Clean,
            "--corrupted",
            Corrupted,
            "--answer",
            "1344",
            "--wrong",
            "2222",
            "--method",
            "attribution",
            "--check"
        );
        Assert.True(code == 0, error + output);
        Assert.Contains("residual (attribution)", output);
        var correlation = double.Parse(
            System
                .Text.RegularExpressions.Regex.Match(
                    output,
                    @"rank correlation with exact patching \(Spearman, 558 sites\): (-?[0-9.]+)"
                )
                .Groups[1]
                .Value,
            System.Globalization.CultureInfo.InvariantCulture
        );
        Assert.InRange(correlation, -1, 1);
    }

    [Fact]
    public void TheRemovalCurveGoesFromTheCleanRunToEveryLayerRemoved()
    {
        var curve = Sweep("curve");
        var order = curve.GetProperty("order").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(Enumerable.Range(1, 30), order.Order());
        var points = curve.GetProperty("points").EnumerateArray().ToArray();
        Assert.Equal(31, points.Length);
        Assert.Equal(0, points[0].GetProperty("klFromClean").GetDouble(), 6);
        Assert.Equal(1.0, points[30].GetProperty("fraction").GetDouble(), 12);
        Assert.True(points[30].GetProperty("klFromClean").GetDouble() > 0.1);
    }

    [Fact]
    public void DirectLogitAttributionSumsToTheLogitDifferenceAndHeadPatchingNamesTheInductionHead()
    {
        var dla = Sweep("dla");
        var layers = dla.GetProperty("layers").EnumerateArray().ToArray();
        Assert.Equal(30, layers.Length);
        var sum =
            dla.GetProperty("embedding").GetDouble()
            + layers.Sum(l =>
                l.GetProperty("heads").EnumerateArray().Sum(h => h.GetDouble())
                + l.GetProperty("mlp").GetDouble()
                + l.GetProperty("attentionBias").GetDouble()
            );
        var difference = dla.GetProperty("logitDifference").GetDouble();
        Assert.Equal(difference, sum, 2);
        Assert.True(difference > 0, "the clean run prefers its answer");

        var rows = Rows(Sweep("head-patching"));
        var (layer, head) = Enumerable
            .Range(0, 30)
            .SelectMany(l => Enumerable.Range(0, 4).Select(h => (l, h)))
            .MaxBy(s => rows[s.l][s.h]);
        using var live = LiveModel.Mini(MiniPresets.DeepSeek7BMini, device: "cpu");
        var best = AttentionProbe.Measure(live.Decoder).MaxBy(s => s.Induction)!;
        Assert.Equal((best.Layer, best.Head), (layer, head));
    }

    [Theory]
    [InlineData(new[] { "--method", "guess" }, "--method 'guess': use exact or attribution.")]
    [InlineData(new[] { "--metric", "accuracy" }, "--metric 'accuracy': use logit-difference or probability.")]
    [InlineData(new[] { "--direction", "sideways" }, "--direction 'sideways': use denoise or noise.")]
    [InlineData(
        new[] { "--method", "attribution" },
        "--method attribution estimates the residual sweep; --sweep layers runs exact."
    )]
    [InlineData(
        new[] { "--sweep", "diagonal" },
        "--sweep 'diagonal': use residual, heads, head-patching, layers, curve or dla."
    )]
    [InlineData(new[] { "--answer", "5000" }, "The answer 5000 is outside the vocabulary [0, 4,096)")]
    [InlineData(new[] { "--corrupted", "1,2" }, "The corrupted prompt has 2 tokens and the clean one 18")]
    [InlineData(new[] { "--answer", "1,2" }, "--answer '1,2' is 2 tokens; give one token.")]
    [InlineData(
        new[] { "--corrupted", "" },
        "--sweep layers patches or measures against a corrupted prompt: give --corrupted."
    )]
    public void BadRequestsAreRefusedNamingTheValue(string[] change, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--clean"] = Clean,
            ["--corrupted"] = Corrupted,
            ["--answer"] = "1344",
            ["--wrong"] = "2222",
            ["--sweep"] = "layers",
        };
        for (var i = 0; i < change.Length; i += 2)
            args[change[i]] = change[i + 1];
        var (code, _, error) = Cli.Run([
            "patch",
            "--model",
            "deepseek-7b-mini",
            "--ids",
            .. args.SelectMany(a => new[] { a.Key, a.Value }),
        ]);
        Assert.NotEqual(0, code);
        Assert.Contains(message, error);
    }
}
