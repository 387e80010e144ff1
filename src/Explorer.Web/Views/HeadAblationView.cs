using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Model.Tokenization;

namespace Explorer.Web.Views;

/// <summary>One predicted token as the Attention page shows it; <see cref="Moved"/>: it is not in the other
/// list.</summary>
public sealed record PredictionChip(string Piece, double Probability, bool Moved);

/// <summary>
/// "Ablate this head" on the Attention page: the prompt's top next-token predictions with and without one query head
/// (or the KV group it shares) ablated, and a sentence for the change.
/// </summary>
public sealed record HeadAblationView(
    string Title,
    string Summary,
    IReadOnlyList<PredictionChip> Before,
    IReadOnlyList<PredictionChip> After,
    double KlFromClean
)
{
    public const int Shown = 5;

    /// <summary>
    /// The sites ablated: query head <paramref name="head"/> of <paramref name="layer"/> (0-based), or with
    /// <paramref name="wholeGroup"/> every query head that shares its KV head.
    /// </summary>
    public static Interventions Sites(
        Explorer.Core.Specs.ModelSpec spec,
        int layer,
        int head,
        bool wholeGroup,
        Ablation kind
    )
    {
        var sites = wholeGroup
            ? Interventions.KvGroup(spec, layer, head / spec.QueriesPerKeyValueHead).ToArray()
            : [new HeadSite(layer, head)];
        return new Interventions { Heads = sites.Select(s => (s, kind)).ToArray() };
    }

    /// <summary>Two forwards of the prompt on the live model (resident or streamed): plain, then ablated.</summary>
    public static HeadAblationView Measure(
        LiveModel live,
        int[] ids,
        int layer,
        int head,
        bool wholeGroup,
        Ablation kind,
        CancellationToken cancellation = default
    )
    {
        var interventions = Sites(live.Spec, layer, head, wholeGroup, kind);
        var effect = AblationEffect.Measure(live.Decoder, ids, interventions, Shown, cancellation);
        return From(
            effect,
            id => TokenPieces.Display(live.Tokenizer, id),
            Describe(live.Spec, layer, head, wholeGroup, kind)
        );
    }

    public static string Describe(
        Explorer.Core.Specs.ModelSpec spec,
        int layer,
        int head,
        bool wholeGroup,
        Ablation kind
    )
    {
        var how = kind == Ablation.Zero ? "zeroed" : "replaced by its mean over the prompt";
        if (!wholeGroup)
            return $"Head {head} of layer {layer + 1} {how}";
        var size = spec.QueriesPerKeyValueHead;
        var group = head / size;
        return size == 1
            ? $"Head {head} of layer {layer + 1} (its own KV head) {how}"
            : $"KV group {group} of layer {layer + 1} (heads {group * size}–{group * size + size - 1}) {how}";
    }

    public static HeadAblationView From(AblationEffect effect, Func<int, string> piece, string title)
    {
        var before = effect.Before.Select(p => p.Token).ToHashSet();
        var after = effect.After.Select(p => p.Token).ToHashSet();
        var top = piece(effect.Before[0].Token);
        var newTop =
            effect.After[0].Token == effect.Before[0].Token
                ? "stays on top"
                : $"gives way to {Quote(piece(effect.After[0].Token))} ({Percent(effect.After[0].Probability)})";
        var summary =
            $"The top prediction {Quote(top)} goes from {Percent(effect.TopBefore)} to "
            + $"{Percent(effect.TopAfter)} and {newTop}; "
            + $"the KL divergence from the plain prediction is {effect.KlFromClean:0.###} nats.";
        return new HeadAblationView(
            title,
            summary,
            effect
                .Before.Select(p => new PredictionChip(piece(p.Token), p.Probability, !after.Contains(p.Token)))
                .ToArray(),
            effect
                .After.Select(p => new PredictionChip(piece(p.Token), p.Probability, !before.Contains(p.Token)))
                .ToArray(),
            effect.KlFromClean
        );
    }

    private static string Percent(double p) =>
        (p * 100).ToString(p < 0.001 ? "0.00" : "0.0", System.Globalization.CultureInfo.InvariantCulture) + "%";

    private static string Quote(string piece) => $"‘{piece}’";
}
