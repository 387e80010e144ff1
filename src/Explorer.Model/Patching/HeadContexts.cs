using Explorer.Model.Decoder;
using static TorchSharp.torch;

namespace Explorer.Model.Patching;

/// <summary>
/// Every query head's output before o_proj over one prompt, (L, H, T, head_dim) fp32 on the CPU: the source of a head
/// patch (another run's output of that head) and of mean ablation over a reference prompt.
/// </summary>
public static class HeadContexts
{
    /// <summary>One forward of <paramref name="ids"/> (resident or streamed), reading each layer's head outputs as it
    /// runs.</summary>
    public static Tensor Of(Decoder.Decoder decoder, int[] ids, CancellationToken cancellation = default)
    {
        var spec = decoder.Spec;
        if (ids.Length == 0)
            throw new ArgumentException("Give at least one token.");
        var layers = new Tensor?[spec.Layers];
        using var scope = NewDisposeScope();
        var observing = new Interventions
        {
            ObserveContext = (l, context) =>
            {
                var kept = context[0].to(ScalarType.Float32).cpu().clone(); // (H, T, hd)
                kept.DetachFromDisposeScope();
                scope.Attach(kept);
                layers[l] = kept;
            },
        };
        using var input = Hosting.LiveModel.ToTensor(ids);
        using (no_grad())
            decoder.Run(input, null, cancellation, edits: observing).Dispose();
        return stack(layers!, 0).MoveToOuterDisposeScope();
    }

    /// <summary>Head <paramref name="site"/> patched in from <paramref name="contexts"/> (<see cref="Of"/> of a run of
    /// the same length).</summary>
    public static HeadPatch Patch(Tensor contexts, HeadSite site)
    {
        using var head = contexts[site.Layer, site.Head].contiguous();
        return new HeadPatch(site, head.data<float>().ToArray());
    }

    /// <summary>
    /// Head <paramref name="site"/> set, at each of <paramref name="length"/> positions, to its mean output over the
    /// reference prompt whose <paramref name="contexts"/> these are: mean ablation over a reference prompt.
    /// </summary>
    public static HeadPatch MeanPatch(Tensor contexts, HeadSite site, int length)
    {
        using var mean = contexts[site.Layer, site.Head].mean([0]); // (hd)
        using var repeated = mean.unsqueeze(0).expand(length, -1).contiguous();
        return new HeadPatch(site, repeated.data<float>().ToArray());
    }
}
