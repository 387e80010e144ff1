using Explorer.Model.Decoder;
using static TorchSharp.torch;

namespace Explorer.Model.Patching;

/// <summary>
/// What an intervention does to a prompt's next-token prediction: the top predictions with and without it, the KL
/// divergence of the intervened prediction from the plain one, and the plain top token's probability before and after.
/// </summary>
public sealed record AblationEffect(
    Prediction[] Before,
    Prediction[] After,
    double KlFromClean,
    double TopBefore,
    double TopAfter
)
{
    /// <summary>Two forwards of <paramref name="ids"/> (plain, then with <paramref name="interventions"/>), resident or
    /// streamed.</summary>
    public static AblationEffect Measure(
        Decoder.Decoder decoder,
        int[] ids,
        Interventions interventions,
        int k = 5,
        CancellationToken cancellation = default
    )
    {
        interventions.Check(decoder.Spec, ids.Length);
        var plain = LastLogits(decoder, ids, Interventions.None, cancellation);
        var changed = LastLogits(decoder, ids, interventions, cancellation);
        var before = PatchingMetric.Top(plain, k);
        var top = before[0].Token;
        return new AblationEffect(
            before,
            PatchingMetric.Top(changed, k),
            PatchingMetric.KlDivergence(plain, changed),
            PatchingMetric.Probability(plain, top),
            PatchingMetric.Probability(changed, top)
        );
    }

    /// <summary>The last position's logits of one forward with <paramref name="interventions"/> applied.</summary>
    public static float[] LastLogits(
        Decoder.Decoder decoder,
        int[] ids,
        Interventions interventions,
        CancellationToken cancellation = default
    )
    {
        using var noGrad = no_grad();
        using var input = Hosting.LiveModel.ToTensor(ids);
        using var logits = decoder.Logits(input, interventions, cancellation);
        using var last = logits[0, ^1].to(ScalarType.Float32).contiguous();
        return last.data<float>().ToArray();
    }
}
