namespace Explorer.Model.Hosting;

/// <summary>Settings of the model host (section "Models" of the web app's configuration).</summary>
public sealed class ModelHostOptions
{
    /// <summary>The only folder checkpoints are loaded from; a path that leaves it is refused.</summary>
    public string ModelsFolder { get; set; } = "models";

    /// <summary>
    /// A Hugging Face hub cache (<c>models--ORG--NAME/snapshots/REV/</c>) whose models are listed beside the models
    /// folder's, as ORG/NAME; null or empty for none. The web app defaults it to the standard location when that
    /// exists.
    /// </summary>
    public string? HubCache { get; set; }

    /// <summary>Longest prompt accepted, in tokens.</summary>
    public int MaxPromptTokens { get; set; } = 512;

    /// <summary>Bytes of recent traces kept for reuse (attention maps dominate).</summary>
    public long TraceCacheBytes { get; set; } = 1L << 30;

    /// <summary>
    /// A logit lens at every position estimated to take longer than this many milliseconds (from the time of the lens
    /// at the last position) waits for the page's button instead of running unasked.
    /// </summary>
    public int AutomaticLensMs { get; set; } = 500;

    /// <summary>
    /// A forward a page's prerender started (<see cref="ModelHost.Prefetch"/>) stops when no live page has asked for it
    /// within this many milliseconds: a link opened by a crawler or a link preview never goes live, and a streamed
    /// model's forward may read for minutes.
    /// </summary>
    public int PrefetchJoinMs { get; set; } = 10_000;

    /// <summary>Requests waiting for the model beyond this many are refused with a "busy" message.</summary>
    public int QueueCapacity { get; set; } = 16;

    /// <summary>auto, cpu or cuda.</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Load the two mini models at start.</summary>
    public bool LoadDefaultModels { get; set; } = true;

    /// <summary>Load the trained weights that ship with the app (false: initialise the minis from <see
    /// cref="Seed"/>).</summary>
    public bool TrainedDefaults { get; set; } = true;

    /// <summary>Run a short forward on each model right after it loads (<see cref="LiveModel.WarmUp"/>).</summary>
    public bool WarmUp { get; set; } = true;

    /// <summary>Seed of the default models' weights when they are not the trained ones.</summary>
    public ulong Seed { get; set; } = 1234;
}
