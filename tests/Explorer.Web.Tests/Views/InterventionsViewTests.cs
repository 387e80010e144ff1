using System.Text.Json;
using Explorer.Model.Patching;
using Explorer.Web.Services;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class InterventionsViewTests
{
    private static PreparedProblem Problem() =>
        new(
            "m",
            new PatchingProblem([5, 6, 7], [5, 9, 7], 1, 2),
            ["a", "b", "c"],
            ["a", "x", "c"],
            [new Prediction(1, 0.5, 3f)],
            [new Prediction(2, 0.5, 3f)],
            "one",
            "two"
        );

    [Fact]
    public void PositionsNameTheirPiecesAndWhereThePromptsDiffer()
    {
        Assert.Equal(["0 a", "1 b→x", "2 c"], InterventionsView.PositionLabels(Problem()));
        Assert.Equal(["embedding", "L1", "L2"], InterventionsView.BoundaryLabels(2));
        Assert.Equal(["h0", "h1"], InterventionsView.HeadLabels(2));
    }

    [Fact]
    public void RowsStrongestAndRangeReadTheSweep()
    {
        var sweep = new SweepResult(
            "heads",
            "Δ",
            2,
            2,
            new[,]
            {
                { 0.5, double.NaN },
                { -3, 1 },
            }
        );
        Assert.Equal(
            [
                [0.5, 0],
                [-3, 1],
            ],
            InterventionsView.Rows(sweep)
        );
        Assert.Equal((1, 0, -3.0), InterventionsView.Strongest(sweep));
        Assert.Equal(3, InterventionsView.Range(sweep));
        Assert.Contains("head 0 of layer 2", InterventionsView.HeadSentence(sweep));
    }

    [Fact]
    public void TheDirectAttributionMapIsHeadsThenTheMlpAndItsSentenceNamesTheLargest()
    {
        var dla = new DirectLogitAttribution(
            1,
            2,
            Embedding: 0.25,
            Heads: new[,]
            {
                { 0.5, -0.25 },
                { 0.125, 1 },
            },
            AttentionBias: [0, 0],
            Mlp: [-2, 0.5],
            Actual: 0.125
        );
        Assert.Equal(0.125, dla.Total, 12); // 0.25 + 0.5 − 0.25 + 0.125 + 1 − 2 + 0.5
        var map = dla.ToSweep();
        Assert.Equal(
            [
                [0.5, -0.25, -2],
                [0.125, 1, 0.5],
            ],
            InterventionsView.Rows(map)
        );
        Assert.Equal(["h0", "h1", "MLP"], InterventionsView.ComponentLabels(2));
        var sentence = InterventionsView.DirectSentence(dla);
        Assert.Contains("the MLP of layer 1 adds most: −2.00", sentence);
        Assert.Contains("all together 0.13, the logit difference itself 0.13", sentence);
        Assert.DoesNotContain("o_proj", sentence);
    }

    [Fact]
    public void TheCurveKeepsTheAnswerUntilItsLogitDifferenceFirstReachesZero()
    {
        // Removed:   0    1    2     3    4 (fraction k / 4)
        double[] ld = [3, 2.5, 1.0, -0.2, 0.4];
        var curve = new RemovalCurve([0, 1, 2, 3], ld.Select((v, k) => new RemovalPoint(k, k / 4.0, v, 0)).ToArray());
        // 3 removed flips it; the recovery at 4 does not count
        Assert.Equal(2, InterventionsView.RemovableKeepingAnswer(curve));
        var flipsAtOnce = new RemovalCurve([0], [new RemovalPoint(0, 0, 1, 0), new RemovalPoint(1, 1, -1, 0)]);
        Assert.Equal(0, InterventionsView.RemovableKeepingAnswer(flipsAtOnce));
        var result = new RemovalResult("m", 4, new SweepResult("layers", "Δ", 3, 3, new double[4, 1]), curve);
        Assert.Contains("2 of 4 layers (50%)", InterventionsView.CurveSentence(result));
        var lines = InterventionsView.CurveLines([result, result with { Model = "n" }]);
        Assert.Equal([0, 0.25, 0.5, 0.75, 1], lines[0].X);
        Assert.Equal(ld, lines[0].Y);
        Assert.NotEqual(lines[0].Color, lines[1].Color);
        Assert.Equal([0.25, 0.5, 0.75, 1], InterventionsView.EachAloneLines([result])[0].X);
        Assert.All(InterventionsView.KlLines([result])[0].Y, y => Assert.True(y > 0)); // drawable on a log axis
    }

    [Fact]
    public async Task DownloadsOfNothingRunHoldNothing()
    {
        await using var host = new Explorer.Model.Hosting.ModelHost(
            new Explorer.Model.Hosting.ModelHostOptions { ModelsFolder = Path.GetTempPath() }
        );
        using var session = new InterventionSession(host);
        var json = JsonDocument.Parse(InterventionsView.Json(session));
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("residual").ValueKind);
        Assert.Equal("sweep,model,row,column,value\n", InterventionsView.Csv(session));
    }
}

public sealed class InterventionsQueryTests : IAsyncDisposable
{
    // Sessions for their fields only: nothing is run on the host.
    private readonly Explorer.Model.Hosting.ModelHost _host = new(
        new Explorer.Model.Hosting.ModelHostOptions { ModelsFolder = Path.GetTempPath() }
    );

    private InterventionSession Session() => new(_host);

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public void ALinkRoundTrips()
    {
        var a = Session();
        a.Use(InterventionExample.Induction);
        a.Method = PatchMethod.Attribution;
        a.Partner = null;
        var query = InterventionsQuery.From(a);
        var b = Session();
        Assert.Empty(InterventionsQuery.Apply(b, query));
        Assert.Equal(
            (a.Model, a.Partner, a.Clean, a.Corrupted, a.Answer, a.Wrong, a.Ids, a.Method),
            (b.Model, b.Partner, b.Clean, b.Corrupted, b.Answer, b.Wrong, b.Ids, b.Method)
        );
        Assert.Equal("1", query.Parameters()["ids"]);
        Assert.Equal("attribution", query.Parameters()["method"]);
    }

    [Fact]
    public void ValuesThatCannotBeUsedAreLeftOutWithANote()
    {
        var s = Session();
        var notes = InterventionsQuery.Apply(
            s,
            new InterventionsQuery(
                null,
                null,
                new string('x', InterventionsQuery.MaxText + 1),
                null,
                null,
                null,
                "maybe",
                "7"
            )
        );
        Assert.Equal(3, notes.Count);
        Assert.Contains(notes, n => n.StartsWith("clean=xxx") && n.Contains("1 to 8,192 characters"));
        Assert.Contains(notes, n => n.StartsWith("ids=maybe") && n.Contains("use 1"));
        Assert.Contains(notes, n => n.StartsWith("method=7") && n.Contains("exact or attribution"));
        Assert.Equal(InterventionExample.Verb.Clean, s.Clean); // the page keeps its own
        Assert.Equal(PatchMethod.Exact, s.Method);
    }
}
