using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;

namespace Explorer.Web.Services;

/// <summary>How the residual sweep is computed: exact patching, or attribution patching first and exact after
/// it.</summary>
public enum PatchMethod
{
    Exact,
    Attribution,
}

/// <summary>A built-in pair of prompts that the minis tell apart, with the answers of each.</summary>
public sealed record InterventionExample(
    string Name,
    string Clean,
    string Corrupted,
    string Answer,
    string Wrong,
    bool Ids
)
{
    /// <summary>The template sentences the minis learned: the verb decides the object ("reads the attention
    /// map").</summary>
    public static InterventionExample Verb { get; } =
        new(
            "the verb decides the object",
            " The head reads the",
            " The head adds the",
            " attention",
            " last",
            Ids: false
        );

    /// <summary>A repeated sequence of random tokens with the 7th changed: the induction answer flips with
    /// it.</summary>
    public static InterventionExample Induction { get; } =
        new(
            "induction: a repeated sequence, one token changed",
            "850,2631,3771,3586,3428,558,1344,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558",
            "850,2631,3771,3586,3428,558,2222,782,2329,3416,2141,2234,850,2631,3771,3586,3428,558",
            "1344",
            "2222",
            Ids: true
        );

    public static IReadOnlyList<InterventionExample> All { get; } = [Verb, Induction];
}

/// <summary>The clean and corrupted prompts as one model reads them: ids, pieces, and each run's top
/// predictions.</summary>
public sealed record PreparedProblem(
    string Model,
    PatchingProblem Problem,
    string[] CleanPieces,
    string[] CorruptedPieces,
    Prediction[] CleanTop,
    Prediction[] CorruptedTop,
    string AnswerPiece,
    string WrongPiece
);

/// <summary>One model's layer-removal results: each layer removed alone, and the curve of k removed together.</summary>
public sealed record RemovalResult(string Model, int Layers, SweepResult EachAlone, RemovalCurve Curve);

/// <summary>
/// The interventions of one browser tab: a clean and a corrupted prompt, the two answers, and the sweeps run on them on
/// the host's worker (residual patching exact or by attribution, head ablation, the layer-removal curves of two
/// models), with progress and cancel. Closing the tab disposes it, which cancels the run.
/// </summary>
public sealed class InterventionSession(ModelHost host) : IDisposable
{
    private CancellationTokenSource? _run;

    public string Model { get; set; } = MiniPresets.DeepSeek7BMini.Name;

    /// <summary>The second model whose layer-removal curve is drawn beside the first; null for none.</summary>
    public string? Partner { get; set; } = MiniPresets.DeepSeek67BMini.Name;
    public string Clean { get; set; } = InterventionExample.Verb.Clean;
    public string Corrupted { get; set; } = InterventionExample.Verb.Corrupted;

    /// <summary>Read the prompts and answers as comma-separated token ids.</summary>
    public bool Ids { get; set; }

    /// <summary>The answers as text (or ids); the chips set them from the runs' predictions.</summary>
    public string Answer { get; set; } = InterventionExample.Verb.Answer;
    public string Wrong { get; set; } = InterventionExample.Verb.Wrong;
    public PatchMethod Method { get; set; } = PatchMethod.Exact;

    public PreparedProblem? Prepared { get; private set; }
    public SweepResult? Residual { get; private set; }
    public SweepResult? Attribution { get; private set; }
    public double? RankCorrelation { get; private set; }
    public SweepResult? Heads { get; private set; }

    /// <summary>Each head's output patched from the clean run into the corrupted one.</summary>
    public SweepResult? HeadPatching { get; private set; }

    /// <summary>Direct logit attribution on the clean prompt; null before it runs or where the family normalises its
    /// branches after them.</summary>
    public DirectLogitAttribution? Direct { get; private set; }

    /// <summary><see cref="Direct"/> as a layer × (heads, MLP) map, made once.</summary>
    public SweepResult? DirectMap { get; private set; }
    public IReadOnlyList<RemovalResult> Removals { get; private set; } = [];

    public bool Running => _run is not null;
    public string? Status { get; private set; }

    /// <summary>Of the whole run, 0 to 1.</summary>
    public double Progress { get; private set; }
    public string? Error { get; private set; }

    /// <summary>What the last run left out and why (a streamed model's exact sweeps).</summary>
    public string? Note { get; private set; }
    public int EndedRuns { get; private set; }
    public event Action? Changed;

    /// <summary>The last run's steps and their times (null before the first run).</summary>
    public InterventionTimeline? LastRun { get; private set; }

    public void Use(InterventionExample example)
    {
        (Clean, Corrupted, Answer, Wrong, Ids) = (
            example.Clean,
            example.Corrupted,
            example.Answer,
            example.Wrong,
            example.Ids
        );
        Clear();
    }

    /// <summary>Forgets the results (the prompts or answers changed).</summary>
    public void Clear()
    {
        Prepared = null;
        Residual = Attribution = Heads = HeadPatching = null;
        Direct = null;
        DirectMap = null;
        RankCorrelation = null;
        Removals = [];
        Notify();
    }

    /// <summary>Token ids of a prompt for a model: text through its tokenizer, or ids checked against its
    /// vocabulary.</summary>
    private int[] Tokens(LiveModel live, string text, string what)
    {
        if (!Ids)
            return live.Encode(text, host.Options.MaxPromptTokens);
        var ids = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            ids.Add(
                int.TryParse(part, out var id)
                    ? id
                    : throw new ArgumentException(
                        $"The {what} '{Shorten(part)}' is not a token id: give whole numbers separated by commas."
                    )
            );
        live.CheckTokens(ids, host.Options.MaxPromptTokens);
        return ids.ToArray();
    }

    private int Token(LiveModel live, string text, string what)
    {
        var ids = Tokens(live, text, what);
        return ids.Length == 1
            ? ids[0]
            : throw new ArgumentException(
                $"The {what} '{Shorten(text)}' is {ids.Length} tokens for {live.Name}; give one token."
            );
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";

    /// <summary>The problem as <paramref name="live"/> reads it, with both runs' top predictions (two
    /// forwards).</summary>
    private PreparedProblem Prepare(LiveModel live, CancellationToken cancellation)
    {
        var problem = new PatchingProblem(
            Tokens(live, Clean, "clean prompt"),
            Tokens(live, Corrupted, "corrupted prompt"),
            Token(live, Answer, "answer"),
            Token(live, Wrong, "wrong answer")
        );
        problem.Check(live.Spec.VocabularySize);
        string Piece(int id) => TokenPieces.Display(live.Tokenizer, id);
        string[] Pieces(int[] ids) =>
            live.Tokenizer is null ? ids.Select(Piece).ToArray() : TokenPieces.Display(live.Tokenizer, ids).ToArray();
        var clean = AblationEffect.LastLogits(live.Decoder, problem.Clean, Interventions.None, cancellation);
        var corrupted = AblationEffect.LastLogits(live.Decoder, problem.Corrupted, Interventions.None, cancellation);
        return new PreparedProblem(
            live.Name,
            problem,
            Pieces(problem.Clean),
            Pieces(problem.Corrupted),
            PatchingMetric.Top(clean, 8),
            PatchingMetric.Top(corrupted, 8),
            Piece(problem.Answer),
            Piece(problem.Wrong)
        );
    }

    /// <summary>
    /// Runs everything the page shows, one step after another on the worker: the prompts and predictions, the residual
    /// sweep (attribution first when asked, then exact, and their rank correlation), head ablation, and each model's
    /// layer removal. A step's result appears as soon as it is done; an error stops the run and says why; Cancel stops
    /// it between layers.
    /// </summary>
    public async Task RunAsync()
    {
        Cancel();
        var run = new CancellationTokenSource();
        _run = run;
        Error = null;
        Note = null;
        Clear();
        var timeline = new InterventionTimeline(DateTimeOffset.UtcNow);
        LastRun = timeline;
        var models =
            Partner is { } partner && !string.Equals(partner, Model, StringComparison.OrdinalIgnoreCase)
                ? new[] { Model, partner }
                : [Model];
        var steps = 5 + models.Length + (Method == PatchMethod.Attribution ? 1 : 0);
        var step = 0;
        async Task<T> Step<T>(string model, string what, Func<LiveModel, IProgress<double>, CancellationToken, T> work)
        {
            var done = step++;
            Status = $"{what} ({model})…";
            Progress = (double)done / steps;
            Notify();
            var progress = new SyncProgress<double>(f =>
            {
                if (!ReferenceEquals(_run, run))
                    return;
                var now = (done + Math.Clamp(f, 0, 1)) / steps;
                if (now - Progress < 0.01) // a redraw per percent at most: a 95-layer sweep reports every layer
                    return;
                Progress = now;
                Notify();
            });
            var queued = DateTimeOffset.UtcNow;
            var started = queued;
            var result = await host.RunWithAsync(
                model,
                (live, c) =>
                {
                    started = DateTimeOffset.UtcNow;
                    return work(live, progress, c);
                },
                run.Token
            );
            var finished = DateTimeOffset.UtcNow;
            timeline.Add(new InterventionStep(what, model, started - queued, finished - started, finished));
            return result;
        }
        try
        {
            Prepared = await Step(Model, "reading the prompts", (live, _, c) => Prepare(live, c));
            var problem = Prepared.Problem;
            // A streamed model runs what goes through its layers in order (attribution, direct attribution); the exact
            // sweeps rerun the layers above each site and need it resident.
            var streamed = host.Find(Model)?.Decoder.IsStreamed == true;
            if (Method == PatchMethod.Attribution || streamed)
                Attribution = await Step(Model, "attribution patching", (live, _, c) =>
                    Sweeps.ResidualAttribution(live.Decoder, problem, c)
                );
            if (!streamed)
            {
                Residual = await Step(Model, "residual patching", (live, p, c) =>
                    Sweeps.ResidualPatching(live.Decoder, problem, p, c)
                );
                if (Attribution is not null)
                    RankCorrelation = Sweeps.RankCorrelation(Residual.Values, Attribution.Values);
                Heads = await Step(Model, "head ablation", (live, p, c) =>
                    Sweeps.HeadAblation(live.Decoder, problem, Ablation.Zero, p, c)
                );
                HeadPatching = await Step(Model, "head patching", (live, p, c) =>
                    Sweeps.HeadPatching(live.Decoder, problem, p, c)
                );
            }
            Direct = await Step(Model, "direct logit attribution", (live, _, c) =>
                live.Spec.NormPlacement == NormPlacement.Pre
                    ? DirectLogitAttribution.Compute(live.Decoder, problem.Clean, problem.Answer, problem.Wrong, c)
                    : null
            );
            DirectMap = Direct?.ToSweep();
            var skipped = models.Where(m => host.Find(m)?.Decoder.IsStreamed == true).ToArray();
            if (skipped.Length > 0)
                Note =
                    $"{string.Join(" and ", skipped)} {(skipped.Length == 1 ? "is" : "are")} streamed: "
                    + "shown are attribution patching and direct "
                    + "logit attribution, which run layer by layer; exact patching, head ablation and "
                    + "layer removal rerun the layers above "
                    + "each site and need the model resident (load it resident on the Models page where it fits).";
            var removals = new List<RemovalResult>();
            foreach (var model in models.Except(skipped))
            {
                removals.Add(await Step(model, "layer removal", (live, p, c) =>
                    {
                        // The partner reads the prompts with its own tokenizer: the same text, its own ids.
                        var own = live.Name == Prepared.Model ? problem : Prepare(live, c).Problem;
                        var alone = Sweeps.LayerRemoval(
                            live.Decoder,
                            own,
                            new SyncProgress<double>(f => p.Report(f / 2)),
                            c
                        );
                        var curve = Sweeps.LayerRemovalCurve(
                            live.Decoder,
                            own,
                            new SyncProgress<double>(f => p.Report(0.5 + f / 2)),
                            c
                        );
                        return new RemovalResult(live.Name, live.Spec.Layers, alone, curve);
                    }));
                Removals = removals.ToArray();
            }
            Progress = 1;
            Status = null;
            timeline.Done = DateTimeOffset.UtcNow;
        }
        catch (OperationCanceledException)
        {
            Status = null;
            Error = "Cancelled: the results so far are shown.";
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or CheckpointException)
        {
            Status = null;
            Error = ProblemText.Readable(e);
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

    public void Cancel() => _run?.Cancel();

    private void Notify() => Changed?.Invoke();

    public void Dispose() => Cancel();
}
