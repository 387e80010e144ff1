using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Microsoft.Extensions.Logging;

namespace Explorer.Web.Services;

/// <summary>
/// The prompt and its runs for one browser tab (a scoped service lives as long as the tab's circuit): which model,
/// what text, the traces the pages look at, and the run in progress. Closing the tab disposes it, which cancels
/// the run and hands the traces back to the host's cache.
/// </summary>
public sealed class PromptSession(ModelHost host, Microsoft.Extensions.Logging.ILogger<PromptSession>? log = null)
    : IDisposable
{
    private CancellationTokenSource? _run;

    // the tab's lifetime: lens completions stop when it closes
    private readonly CancellationTokenSource _lensRun = new();
    private CancellationTokenSource? _lens; // the lens completion under way; a new run cancels it
    private readonly Dictionary<string, TraceLease> _leases = new(StringComparer.OrdinalIgnoreCase);

    public string Model { get; set; } = MiniPresets.DeepSeek7BMini.Name;
    public string Prompt { get; set; } = "The quick brown fox jumps over the lazy dog. The quick brown fox";
    public bool Running => _run is not null;
    public string? Error { get; private set; }
    public string? Status { get; private set; }

    /// <summary>Runs that finished with every model traced.</summary>
    public int CompletedRuns { get; private set; }

    /// <summary>Runs that ended, however: traced, failed (with <see cref="Error"/> saying why) or cancelled. What a
    /// test or a soak client waits on, before it looks at whether the run completed.</summary>
    public int EndedRuns { get; private set; }
    public event Action? Changed;

    /// <summary>Whether runs keep attention maps: the Attention page shows them, the Layers page does not need
    /// them.</summary>
    public bool KeepAttention { get; set; } = true;

    public TraceLease? Trace(string model) => _leases.GetValueOrDefault(model);

    /// <summary>The last run stage by stage (null before the first).</summary>
    public RunTimeline? LastRun { get; private set; }

    /// <summary>Most characters a link's prompt may have to be taken: past this it is over any token limit
    /// here.</summary>
    public int MaxLinkPromptCharacters => host.Options.MaxPromptTokens * 16;

    /// <summary>
    /// Takes a link's model and prompt (either may be absent); true when the prompt is another than the session's. A
    /// prompt too long for any model here is not taken (it would be sent back and forth with every change of the URL):
    /// the error says so, as it would for the same prompt typed.
    /// </summary>
    public bool OpenLink(string? model, string? prompt)
    {
        if (model is { Length: > 0 })
            Model = model.Length <= 200 ? model : model[..200];
        if (prompt is not { Length: > 0 } || prompt == Prompt)
            return false;
        if (prompt.Length > MaxLinkPromptCharacters)
        {
            try
            {
                host.Tokenize(Model, prompt);
                Error = $"The link's prompt is {prompt.Length:N0} characters: too long to run here.";
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                Error = ProblemText.Readable(e); // the message a typed prompt gets
            }
            return false;
        }
        Prompt = prompt;
        return true;
    }

    /// <summary>
    /// Whether a page opened on a link runs the prompt once it is live (the one rule the live pages share): when the
    /// link changed the prompt, or when a model it shows has no trace (or, for a page that draws attention maps, one
    /// without them) and there is a prompt to run, named by the link or already traced for another model or page.
    /// </summary>
    public bool MustRun(IReadOnlyList<string> models, bool attention, bool linkNamedPrompt, bool promptChanged)
    {
        bool Lacks(string model) => Trace(model) is not { } lease || (attention && !lease.Trace.HasAttention);
        return promptChanged || (models.Any(Lacks) && (linkNamedPrompt || models.Any(m => Trace(m) is not null)));
    }

    public Explorer.Model.Tokenization.ITextTokenizer? Tokenizer(string model) => host.Find(model)?.Tokenizer;

    public ModelSpec? Spec(string model) => host.Find(model)?.Spec;

    public IReadOnlyList<string> ReadyModels =>
        host.Models.Where(m => m.State == ModelState.Ready).Select(m => m.Name).ToArray();

    /// <summary>
    /// Starts the forwards of the prompt through <paramref name="models"/> that a page being prerendered will run
    /// once its circuit is live (<see cref="ModelHost.Prefetch"/>): the live page's run then joins them. A prompt or
    /// model that cannot run starts nothing; the live run reports why.
    /// </summary>
    public void Prefetch(IReadOnlyList<string> models)
    {
        foreach (var model in models)
        {
            try
            {
                var tokens = host.Tokenize(model, Prompt);
                host.Prefetch(model, tokens, TraceOptions.ForViews(tokens.Length, KeepAttention));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                return;
            }
        }
    }

    /// <summary>Least time between two statuses of a streamed forward's layers (the first comes after it
    /// too).</summary>
    public static readonly TimeSpan StatusInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Runs the prompt through <paramref name="models"/> (one after the other on the host's worker).</summary>
    public async Task RunAsync(IReadOnlyList<string> models)
    {
        Cancel();
        CancelLens();
        var run = new CancellationTokenSource();
        _run = run;
        Error = null;
        var timeline = new RunTimeline(DateTimeOffset.UtcNow);
        LastRun = timeline;
        Notify();
        try
        {
            foreach (var model in models)
            {
                Status = $"running {model}…";
                Notify();
                var tokenizing = System.Diagnostics.Stopwatch.StartNew();
                var tokens = host.Tokenize(model, Prompt);
                var tokenized = tokenizing.Elapsed;
                // A streamed model reads its layers from disk as the forward goes: say which layer it is on, at most
                // every StatusInterval (each status re-renders the page, on the cores the forward runs on). The host
                // reports layers for streamed models only, decided when the forward runs (the model may still be
                // loading).
                var shown = System.Diagnostics.Stopwatch.StartNew();
                var layers = new Progress<int>(done =>
                {
                    if (!ReferenceEquals(_run, run))
                        return; // a report that arrives after its run ended
                    if (shown.Elapsed < StatusInterval)
                        return;
                    shown.Restart();
                    var total = host
                        .Models.FirstOrDefault(m => string.Equals(m.Name, model, StringComparison.OrdinalIgnoreCase))
                        ?.Spec?.Layers;
                    Status = $"running {model} (streamed): layer {done} of {total?.ToString() ?? "?"}…";
                    Notify();
                });
                var lease = await host.TraceAsync(
                    model,
                    tokens,
                    TraceOptions.ForViews(tokens.Length, KeepAttention),
                    run.Token,
                    layers
                );
                if (_leases.Remove(model, out var old))
                    old.Dispose();
                _leases[model] = lease;
                // A lens too long to run unasked is on request from the moment the charts can show it (a trace
                // from the cache may be priced already).
                timeline.Add(
                    new ModelRun(lease.Model, tokens.Length, tokenized, lease.Timings)
                    {
                        LensOnRequest = LensOnRequest(model),
                    }
                );
                Notify();
            }
            timeline.Traced = DateTimeOffset.UtcNow;
            Status = null;
            CompletedRuns++;
        }
        catch (OperationCanceledException)
        {
            Status = null;
            Error = "Cancelled: the run stopped; the charts show the last finished run.";
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            Status = null;
            Error = ProblemText.Readable(e);
        }
        catch (Exception e)
        {
            // A fault (in the host, or in a page rebuilding on a change): said on the page and logged, not left to
            // break the tab's connection with the run neither finished nor failed.
            log?.LogError(e, "A run of {Models} failed", string.Join(", ", models));
            Status = null;
            Error = $"The run failed: {ProblemText.Readable(e)}";
        }
        finally
        {
            if (ReferenceEquals(_run, run))
                _run = null;
            run.Dispose();
            EndedRuns++;
            Notify();
        }
    }

    /// <summary>
    /// Lenses estimated to take longer than this wait to be asked for (<see cref="LensOnRequest"/>): unasked, they
    /// would hold the cores for seconds after every other chart is drawn (the 7B's at 31 positions takes 1.5 × its
    /// forward).
    /// <see cref="ModelHostOptions.AutomaticLensMs"/> by default.
    /// </summary>
    public TimeSpan AutomaticLensBudget { get; set; } =
        TimeSpan.FromMilliseconds(Math.Max(0, host.Options.AutomaticLensMs));

    /// <summary>Whether a lens completion is under way.</summary>
    public bool LensRunning => _lens is not null;

    /// <summary>
    /// The estimated time of the lens at every position of <paramref name="model"/>'s trace when it is too long to run
    /// unasked and not done yet (<see cref="LensCost"/>, from the lens at the last position); null otherwise, and
    /// before the last position has been read.
    /// </summary>
    public TimeSpan? LensOnRequest(string model)
    {
        if (Trace(model) is not { Trace: { FullLens: null, DeferredLensPositions.Length: > 0 } trace })
            return null;
        return LensCost.Estimate(trace) is { } estimate && estimate > AutomaticLensBudget ? estimate : null;
    }

    /// <summary>
    /// Reads the logit lens of the current traces of <paramref name="models"/> on the host's worker: first at the last
    /// position of each (a fraction of a forward; views redraw with it), then at every position, one model after the
    /// other; a new run cancels it. Views rebuild as each is done. A lens at every position too long to run unasked
    /// (<see cref="LensOnRequest"/>) runs only when <paramref name="asked"/>.
    /// </summary>
    public async Task CompleteLensAsync(IReadOnlyList<string> models, bool asked = false)
    {
        CancelLens();
        using var lens = CancellationTokenSource.CreateLinkedTokenSource(_lensRun.Token);
        _lens = lens;
        var token = lens.Token;
        try
        {
            // The timing line counts the lens of the run it shows, not of a trace another page left.
            ModelRun? Part(TraceLease lease) =>
                LastRun?.Models.FirstOrDefault(m => ReferenceEquals(m.Forward, lease.Timings));
            foreach (var model in models)
            {
                if (Trace(model) is not { Trace: { LastLens: null, DeferredLensPositions.Length: > 0 } } lease)
                    continue;
                Status = $"logit lens of {model} at the last position…";
                Notify();
                var last = await host.ReadLastLensAsync(lease, token);
                if (Part(lease) is { } run)
                    run.LastLens = last;
                Notify();
            }
            foreach (var model in models)
            {
                if (Trace(model) is not { } lease)
                    continue;
                var part = Part(lease);
                var timings = TraceTimings.NotNeeded();
                if (lease.Trace is { FullLens: null, DeferredLensPositions.Length: > 0 })
                {
                    if (!asked && LensOnRequest(model) is { } estimate)
                    {
                        if (part is not null)
                            part.LensOnRequest = estimate;
                        continue;
                    }
                    Status = $"logit lens of {model} at every position…";
                    Notify();
                    timings = await host.CompleteLensAsync(lease, token);
                }
                if (part is not null)
                    part.Lens = timings;
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ObjectDisposedException)
        {
            Error = ProblemText.Readable(e);
        }
        finally
        {
            if (ReferenceEquals(_lens, lens))
                _lens = null;
            if (!Running)
                Status = null;
            Notify();
        }
    }

    private void CancelLens()
    {
        try
        {
            _lens?.Cancel();
        }
        catch (ObjectDisposedException) { }
    }

    public void Cancel()
    {
        try
        {
            _run?.Cancel();
        }
        catch (ObjectDisposedException) { }
    }

    private void Notify() => Changed?.Invoke();

    public void Dispose()
    {
        Cancel();
        _lensRun.Cancel();
        _lensRun.Dispose();
        foreach (var lease in _leases.Values)
            lease.Dispose();
        _leases.Clear();
    }
}
