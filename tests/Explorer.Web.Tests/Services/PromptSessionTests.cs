using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Web.Services;

namespace Explorer.Web.Tests;

public sealed class PromptSessionTests : IAsyncLifetime
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-session-");
    private ModelHost _host = null!;

    public async Task InitializeAsync()
    {
        _host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                Device = "cpu",
                MaxPromptTokens = 32,
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
    public async Task RunKeepsATraceForEachModel()
    {
        using var session = new PromptSession(_host) { Prompt = "Two models, one prompt." };
        await session.RunAsync(["deepseek-7b-mini", "deepseek-67b-mini"]);
        Assert.Null(session.Error);
        Assert.Equal(30, session.Trace("deepseek-7b-mini")!.Trace.Layers);
        Assert.Equal(95, session.Trace("deepseek-67b-mini")!.Trace.Layers);
        Assert.False(session.Running);
    }

    [Fact]
    public async Task AStreamedForwardSaysItsLayerAtMostEveryStatusInterval()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Name = "streamed-mini" };
        Explorer.Model.Weights.RandomCheckpoint.Write(
            spec,
            Path.Combine(_root.FullName, spec.Name),
            TorchSharp.torch.ScalarType.Float32,
            maxShardBytes: 1L << 30,
            seed: 3
        );
        await _host.LoadCheckpointAsync(spec.Name, PlacementRequest.Streamed);
        Assert.True(_host.Find(spec.Name)!.Decoder.IsStreamed);
        using var session = new PromptSession(_host) { Prompt = "Layer by layer." };
        var statuses = new List<string>();
        session.Changed += () =>
        {
            if (session.Status is { } status && status.Contains("(streamed): layer"))
                lock (statuses)
                    statuses.Add(status);
        };
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await session.RunAsync([spec.Name]);
        var took = watch.Elapsed;
        Assert.Null(session.Error);
        // 30 layers report; each status re-renders the page, so they are shown at most one per interval.
        lock (statuses)
            Assert.True(
                statuses.Count <= 1 + took / PromptSession.StatusInterval,
                $"{statuses.Count} statuses in {took.TotalMilliseconds:0} ms"
            );
    }

    [Fact]
    public async Task ARunRecordsItsStagesInOrderAndTheLensWhenItIsCompleted()
    {
        const string model = "deepseek-7b-mini";
        using var session = new PromptSession(_host) { Prompt = "Stages of one run, in order." };
        Assert.Null(session.LastRun);
        await session.RunAsync([model]);
        var run = session.LastRun!;
        var part = Assert.Single(run.Models);
        Assert.Equal((model, _host.Tokenize(model, session.Prompt).Length), (part.Model, part.Tokens));
        Assert.False(part.Forward.Reused);
        // Asked for, queued, taken up, done, every model traced: each mark at or after the one before.
        Assert.True(run.Requested <= part.Forward.Queued);
        Assert.True(part.Forward.Queued <= part.Forward.Started);
        Assert.True(part.Forward.Started < part.Forward.Done);
        Assert.True(part.Forward.Done <= run.Traced);
        Assert.Equal(part.Forward.Done - part.Forward.Started, run.Forward);
        Assert.Null(run.LensDone); // no lens is read until a page asks for it
        Assert.Null(session.Trace(model)!.Trace.LastLens);
        Assert.DoesNotContain("lens", run.Describe());

        await session.CompleteLensAsync([model]);
        // The last position first, then every position.
        Assert.NotNull(session.Trace(model)!.Trace.LastLens);
        Assert.NotNull(session.Trace(model)!.Trace.FullLens);
        Assert.False(part.LastLens!.Reused);
        Assert.True(run.Traced <= part.LastLens.Queued && part.LastLens.Started < part.LastLens.Done);
        Assert.False(part.Lens!.Reused);
        Assert.True(part.LastLens.Done <= part.Lens.Queued && part.Lens.Started < part.Lens.Done);
        Assert.Equal(part.Lens.Done, run.LensDone);
        Assert.Equal(part.LastLens.Ran + part.Lens.Ran, run.Lens);
        Assert.Contains($"{model}, {part.Tokens} tokens: forward ", run.Describe());
        Assert.Contains("lens at the last position", run.Describe());
        Assert.Contains("lens at every position", run.Describe());

        // The same prompt again comes from the cache: no forward, and the line says so.
        await session.RunAsync([model]);
        Assert.NotSame(run, session.LastRun);
        Assert.True(session.LastRun!.Models[0].Forward.Reused);
        Assert.Equal(TimeSpan.Zero, session.LastRun.Forward);
        Assert.Contains("from the cache", session.LastRun.Describe());
    }

    [Fact]
    public async Task ALensEstimatedOverTheBudgetWaitsToBeAskedFor()
    {
        const string model = "deepseek-67b-mini";
        using var session = new PromptSession(_host) { Prompt = "A lens that waits for its button." };
        await session.RunAsync([model]);
        var trace = session.Trace(model)!;
        // Nothing is priced, so nothing waits, before the last position is read.
        session.AutomaticLensBudget = TimeSpan.Zero;
        Assert.Null(session.LensOnRequest(model));
        Assert.False(session.LastRun!.LensOnRequest);
        // With no budget, any lens at every position waits: the estimate is the last position's time, per position.
        await session.CompleteLensAsync([model]);
        Assert.NotNull(trace.Trace.LastLens);
        Assert.Null(trace.Trace.FullLens);
        var expected = trace.Trace.LastLensTime * (trace.Trace.DeferredLensPositions.Length - 1);
        Assert.Equal(expected, session.LensOnRequest(model));
        var run = session.LastRun!;
        Assert.True(run.LensOnRequest);
        Assert.Null(run.LensDone);
        Assert.Contains("lens at every position on request (about ", run.Describe());
        // Asked for, it runs; then nothing waits.
        await session.CompleteLensAsync([model], asked: true);
        Assert.NotNull(trace.Trace.FullLens);
        Assert.False(run.LensOnRequest);
        Assert.NotNull(run.LensDone);
        Assert.Null(session.LensOnRequest(model));
        // Under a budget over its estimate, the lens at every position runs unasked.
        session.AutomaticLensBudget = TimeSpan.FromMinutes(10);
        session.Prompt = "Another prompt, another trace.";
        await session.RunAsync([model]);
        await session.CompleteLensAsync([model]);
        Assert.NotNull(session.Trace(model)!.Trace.FullLens);
        Assert.NotNull(session.LastRun!.LensDone);
    }

    [Fact]
    public async Task APageOnALinkRunsWhenTheLinkChangedThePromptOrAShownModelLacksATrace()
    {
        const string a = "deepseek-7b-mini",
            b = "deepseek-67b-mini";
        using var session = new PromptSession(_host);
        // A bare link on a fresh tab: no prompt to run.
        Assert.False(session.OpenLink(null, null));
        Assert.False(session.MustRun([a], attention: false, linkNamedPrompt: false, promptChanged: false));
        // A link naming a prompt: run it.
        Assert.True(session.OpenLink(a, "One prompt."));
        Assert.Equal((a, "One prompt."), (session.Model, session.Prompt));
        Assert.True(session.MustRun([a], attention: false, linkNamedPrompt: true, promptChanged: true));

        session.KeepAttention = false; // as the Layers page runs it: no maps
        await session.RunAsync([a]);
        // The same link again: nothing to run for the Layers page; the Attention page needs the maps.
        Assert.False(session.OpenLink(a, "One prompt."));
        Assert.False(session.MustRun([a], attention: false, linkNamedPrompt: true, promptChanged: false));
        Assert.True(session.MustRun([a], attention: true, linkNamedPrompt: false, promptChanged: false));
        // Compare mode with the partner not yet traced: run, even on a link without a prompt.
        Assert.True(session.MustRun([a, b], attention: false, linkNamedPrompt: false, promptChanged: false));
        // Another prompt in the link: run, whatever is traced.
        Assert.True(session.OpenLink(null, "Another prompt."));
    }

    [Theory]
    [InlineData("", "deepseek-7b-mini", "empty")]
    [InlineData(
        "word word word word word word word word word word word word word word word word word word word "
            + "word word word word word word word word word word word word word word word",
        "deepseek-7b-mini",
        "at most 32"
    )]
    [InlineData("hello", "gpt-2", "Unknown model 'gpt-2'")]
    public async Task BadInputIsAMessageNotACrash(string prompt, string model, string message)
    {
        using var session = new PromptSession(_host) { Prompt = prompt };
        await session.RunAsync([model]);
        Assert.Contains(message, session.Error);
        Assert.Null(session.Trace(model));
        // The host still serves the next request.
        session.Prompt = "fine";
        await session.RunAsync(["deepseek-7b-mini"]);
        Assert.Null(session.Error);
    }

    [Fact]
    public async Task CancelMidRunStopsAndSaysSo()
    {
        using var session = new PromptSession(_host) { Prompt = "long enough to take a while on the deep model" };
        var cancelled = _host.Cancelled;
        var run = session.RunAsync(["deepseek-67b-mini", "deepseek-7b-mini"]);
        session.Cancel();
        await run;
        Assert.Contains("Cancelled", session.Error);
        Assert.False(session.Running);
        // Observed as a cancellation: the host skipped or stopped the forward (seen once a later forward has had its
        // turn on the serial worker), no run completed, no trace was kept.
        using (
            await _host.TraceAsync(
                "deepseek-7b-mini",
                "after the cancelled run",
                Explorer.Model.Decoder.TraceOptions.ForViews(4),
                CancellationToken.None
            )
        ) { }
        Assert.Equal(cancelled + 1, _host.Cancelled);
        Assert.Equal(0, session.CompletedRuns);
        Assert.Equal(1, session.EndedRuns);
        Assert.Null(session.Trace("deepseek-67b-mini"));
        Assert.Null(session.Trace("deepseek-7b-mini"));
    }

    [Fact]
    public async Task ClosingTheTabCancelsAndReleasesItsTraces()
    {
        var session = new PromptSession(_host) { Prompt = "closing" };
        await session.RunAsync(["deepseek-7b-mini"]);
        var lease = session.Trace("deepseek-7b-mini")!;
        var run = session.RunAsync(["deepseek-67b-mini"]);
        session.Dispose(); // what the circuit does when the tab goes away
        await run;
        Assert.NotNull(lease.Trace); // the cache still holds it for the next visitor
        using var again = await _host.TraceAsync(
            "deepseek-7b-mini",
            "closing",
            Explorer.Model.Decoder.TraceOptions.ForViews(2),
            CancellationToken.None
        );
        Assert.True(again.FromCache);
    }
}
