using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Web.Services;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public sealed class InterventionSessionTests : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-interventions-");
    private ModelHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                Device = "cpu",
                MaxPromptTokens = 64,
            }
        );
        await _host.LoadDefaultModelsAsync();
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _root.Delete(true);
    }

    [Fact]
    public async Task TheDefaultsRunEverySweepWithTheValuesTheDefinitionsFix()
    {
        using var session = new InterventionSession(_host) { Method = PatchMethod.Attribution };
        var reports = 0;
        session.Changed += () => reports++;
        await session.RunAsync();
        Assert.Null(session.Error);
        var p = session.Prepared!;
        int t = p.Problem.Length,
            layers = MiniPresets.DeepSeek7BMini.Layers;
        var changed = Enumerable.Range(0, t).Where(i => p.Problem.Clean[i] != p.Problem.Corrupted[i]).ToArray();
        Assert.Single(changed); // " reads" → " adds"
        var residual = session.Residual!;
        Assert.Equal((layers + 1, t), (residual.Values.GetLength(0), residual.Values.GetLength(1)));
        for (var pos = 0; pos < t; pos++)
        {
            // The embedding patched where the prompts differ is the clean run itself: effect 1; elsewhere nothing
            // changes: 0.
            Assert.Equal(pos == changed[0] ? 1.0 : 0.0, residual.Values[0, pos], 4);
            // After the last layer only the last position reaches the last logits, and there it is the clean state.
            Assert.Equal(pos == t - 1 ? 1.0 : 0.0, residual.Values[layers, pos], 4);
        }
        Assert.True(
            residual.Clean > 0 && residual.Corrupted < 0,
            $"the answer flips: {residual.Clean} vs {residual.Corrupted}"
        );
        Assert.Equal(residual.Values.Length, session.Attribution!.Values.Length);
        Assert.InRange(session.RankCorrelation!.Value, -1, 1);
        Assert.Equal(
            (layers, MiniPresets.DeepSeek7BMini.AttentionHeads),
            (session.Heads!.Values.GetLength(0), session.Heads.Values.GetLength(1))
        );

        // Both models' removal results, on their own depths; no layer removed is the clean run.
        Assert.Equal([30, 95], session.Removals.Select(r => r.Layers));
        Assert.Equal(residual.Clean, session.Removals[0].Curve.Points[0].Metric, 3);
        Assert.Equal(0, session.Removals[0].Curve.Points[0].KlFromClean, 6);
        Assert.Equal(96, session.Removals[1].Curve.Points.Count);
        Assert.False(session.Running);
        Assert.Equal(1.0, session.Progress, 2);
        Assert.InRange(reports, 8, 400);
        // Direct logit attribution of the clean run: its components sum to the clean logit difference.
        Assert.Equal(residual.Clean, session.Direct!.Actual, 3);
        Assert.Equal(session.Direct.Actual, session.Direct.Total, 2);

        // The downloads hold every value: one CSV row per site and curve point, the JSON's rows as computed.
        var heads = MiniPresets.DeepSeek7BMini.AttentionHeads;
        var csvRows = InterventionsView.Csv(session).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1;
        Assert.Equal(2 * (layers + 1) * t + 2 * layers * heads + layers * (heads + 1) + (30 + 31) + (95 + 96), csvRows);
        using var json = System.Text.Json.JsonDocument.Parse(InterventionsView.Json(session));
        var row0 = json
            .RootElement.GetProperty("residual")
            .GetProperty("rows")[0]
            .EnumerateArray()
            .Select(e => e.GetDouble())
            .ToArray();
        Assert.Equal(Enumerable.Range(0, t).Select(i => residual.Values[0, i]), row0);
        // a step's result and progress by the percent, not a report per layer and head
        Assert.Equal(95, json.RootElement.GetProperty("removals")[1].GetProperty("order").GetArrayLength());
    }

    [Fact]
    public async Task BadInputIsAnErrorNamingTheValueAndTheRunEnds()
    {
        using var session = new InterventionSession(_host) { Corrupted = " The head adds the attention" };
        await session.RunAsync();
        Assert.Contains("same length", session.Error);
        Assert.Null(session.Prepared);

        session.Corrupted = InterventionExample.Verb.Corrupted;
        session.Answer = " attention map";
        await session.RunAsync();
        Assert.Contains("' attention map' is 2 tokens", session.Error);

        session.Use(InterventionExample.Induction);
        session.Wrong = "99999";
        await session.RunAsync();
        Assert.Contains("99999", session.Error);
        Assert.Contains("vocabulary", session.Error);

        session.Wrong = "12x";
        await session.RunAsync();
        Assert.Contains("'12x' is not a token id", session.Error);
        Assert.Equal(4, session.EndedRuns);
        Assert.False(session.Running);
    }

    [Fact]
    public async Task CancelStopsTheRunAndKeepsWhatIsDone()
    {
        using var session = new InterventionSession(_host);
        var run = session.RunAsync();
        // Cancel once the first step is done: the sweeps after it never finish.
        while (session.Prepared is null && !run.IsCompleted)
            await Task.Delay(10);
        session.Cancel();
        await run;
        Assert.Equal("Cancelled: the results so far are shown.", session.Error);
        Assert.NotNull(session.Prepared);
        Assert.True(session.Removals.Count < 2);
        Assert.False(session.Running);
        Assert.Null(session.LastRun!.Done); // the timing line is for runs that finished
    }

    [Fact]
    public async Task ARunRecordsEachStepsWaitAndComputeInOrder()
    {
        using var session = new InterventionSession(_host) { Method = PatchMethod.Attribution };
        await session.RunAsync();
        var run = session.LastRun!;
        // Prompts, attribution, residual patching, head ablation, head patching, direct attribution, and layer removal
        // for each of the two models.
        Assert.Equal(
            [
                "reading the prompts",
                "attribution patching",
                "residual patching",
                "head ablation",
                "head patching",
                "direct logit attribution",
                "layer removal",
                "layer removal",
            ],
            run.Steps.Select(s => s.What)
        );
        Assert.Equal(new[] { session.Model, session.Partner! }, run.Steps.TakeLast(2).Select(s => s.Model));
        Assert.All(run.Steps, s => Assert.True(s.Ran > TimeSpan.Zero && s.Waited >= TimeSpan.Zero));
        for (var i = 1; i < run.Steps.Count; i++)
            Assert.True(run.Steps[i - 1].Done <= run.Steps[i].Done);
        Assert.Equal(run.Steps[1].Done, run.FirstResult);
        Assert.True(run.Requested < run.FirstResult && run.Steps[^1].Done <= run.Done);
        Assert.Equal(run.Steps.Aggregate(TimeSpan.Zero, (t, s) => t + s.Ran), run.Compute);
        Assert.True(run.Done - run.Requested >= run.Compute);
        Assert.Contains($"residual patching ({session.Model}) ", run.Describe());
        Assert.Contains("; compute ", run.Describe());
    }

    [Fact]
    public async Task AStreamedModelRunsAttributionAndDirectAttributionAndSaysWhatNeedsItResident()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Name = "streamed-mini", Layers = 4 };
        Explorer.Model.Weights.RandomCheckpoint.Write(
            spec,
            Path.Combine(_root.FullName, spec.Name),
            TorchSharp.torch.ScalarType.Float32,
            maxShardBytes: 1L << 30,
            seed: 3
        );
        var status = await _host.LoadCheckpointAsync(spec.Name, PlacementRequest.Streamed);
        Assert.True(_host.Find(spec.Name)!.Decoder.IsStreamed, status.Message);
        using var session = new InterventionSession(_host)
        {
            Model = spec.Name,
            Partner = MiniPresets.DeepSeek7BMini.Name,
            Ids = true,
            Method = PatchMethod.Exact,
            Clean = "300,301,302,303,300,301,302",
            Corrupted = "300,305,302,303,300,301,302",
            Answer = "303",
            Wrong = "304",
        };
        await session.RunAsync();
        Assert.Null(session.Error);
        Assert.Equal(
            (spec.Layers + 1, 7),
            (session.Attribution!.Values.GetLength(0), session.Attribution.Values.GetLength(1))
        );
        Assert.Null(session.Residual);
        Assert.Null(session.Heads);
        Assert.Null(session.HeadPatching);
        Assert.Equal(session.Direct!.Actual, session.Direct.Total, 3);
        Assert.Contains("streamed-mini is streamed", session.Note);
        // The resident partner still draws its removal curve.
        Assert.Equal([MiniPresets.DeepSeek7BMini.Name], session.Removals.Select(r => r.Model));
    }

    [Fact]
    public async Task TheInductionExampleFlipsOnTheMini()
    {
        using var session = new InterventionSession(_host) { Partner = null };
        session.Use(InterventionExample.Induction);
        await session.RunAsync();
        Assert.Null(session.Error);
        Assert.Equal(18, session.Prepared!.Problem.Length);
        Assert.True(session.Residual!.Clean > 0 && session.Residual.Corrupted < 0);
        Assert.Single(session.Removals);
        // The head whose zeroing costs the answer most is named in the page's sentence.
        var (row, column, value) = InterventionsView.Strongest(session.Heads!)!.Value;
        Assert.True(value < 0);
        Assert.Contains($"head {column} of layer {row + 1}", InterventionsView.HeadSentence(session.Heads!));

        // Patching one head's clean output into the corrupted run: the induction probe's best head alone restores
        // (nearly) all of the answer, and no other head half of it.
        var tokens = Explorer.Model.Training.AttentionProbe.RepeatedTokens(
            Explorer.Model.Training.AttentionProbe.Length,
            MiniPresets.DeepSeek7BMini.VocabularySize
        );
        using var lease = await _host.TraceAsync(
            MiniPresets.DeepSeek7BMini.Name,
            tokens,
            Explorer.Model.Training.AttentionProbe.TraceOptions,
            CancellationToken.None
        );
        var best = Explorer.Model.Training.AttentionProbe.Score(lease.Trace).MaxBy(s => s.Induction)!;
        var patched = InterventionsView.Strongest(session.HeadPatching!)!.Value;
        Assert.Equal((best.Layer, best.Head), (patched.Row, patched.Column));
        Assert.True(patched.Value > 0.8, $"head {best.Head} of layer {best.Layer + 1} restores {patched.Value}");
        var others = Enumerable
            .Range(0, session.HeadPatching!.Values.Length)
            .Where(i => i != patched.Row * 4 + patched.Column)
            .Select(i => session.HeadPatching.Values[i / 4, i % 4]);
        Assert.All(others, v => Assert.True(v < 0.5, $"another head restores {v}"));
    }
}
