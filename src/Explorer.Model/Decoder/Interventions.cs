using Explorer.Core.Specs;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>How a site's activation is removed: set to zero, or to its mean over the prompt's positions.</summary>
public enum Ablation
{
    Zero,
    Mean,
}

/// <summary>The branch of a layer whose output (the contribution it adds to the residual) an ablation
/// replaces.</summary>
public enum Component
{
    Attention,
    Mlp,
}

/// <summary>Query head <paramref name="Head"/> of layer <paramref name="Layer"/> (0-based), its output before
/// o_proj.</summary>
public readonly record struct HeadSite(int Layer, int Head);

/// <summary>
/// The residual stream at boundary <paramref name="Boundary"/> (0: the embedding; l: after layer l, 1-based as the
/// pages number layers) and position <paramref name="Position"/>, replaced by <paramref name="Value"/> (d values,
/// fp32).
/// </summary>
public sealed record ResidualPatch(int Boundary, int Position, float[] Value);

/// <summary>
/// Query head <paramref name="Site"/>'s output before o_proj, at every position, replaced by <paramref name="Value"/>
/// (T · head_dim values, position-major, fp32): a head patched in from another run of the same length
/// (<see cref="Explorer.Model.Patching.HeadContexts"/>), or set to its mean over a reference prompt at every position.
/// </summary>
public sealed record HeadPatch(HeadSite Site, float[] Value);

/// <summary>
/// What one forward changes inside the model: ablated query heads (GQA-aware: a head is a query head; a KV group is its
/// heads), ablated attention or MLP outputs, skipped layers (a skipped layer's output is its input), and residual
/// states patched in from another run. The decoder applies them in its one forward (<see cref="Decoder.Logits(Tensor,
/// Interventions)"/>,
/// <see cref="Decoder.Trace"/>), resident or streamed, for every family. Layers here are 0-based except in
/// <see cref="ResidualPatch.Boundary"/>.
/// </summary>
public sealed record Interventions
{
    public IReadOnlyList<(HeadSite Site, Ablation Kind)> Heads { get; init; } = [];
    public IReadOnlyList<(int Layer, Component Component, Ablation Kind)> Components { get; init; } = [];
    public IReadOnlyList<int> SkippedLayers { get; init; } = [];
    public IReadOnlyList<ResidualPatch> Patches { get; init; } = [];
    public IReadOnlyList<HeadPatch> HeadPatches { get; init; } = [];

    public static Interventions None { get; } = new();

    /// <summary>
    /// Told, for each layer run (0-based), each query head's output through o_proj at the last position (H, d) and
    /// o_proj's bias (d, or null), both fp32 on the CPU: what direct logit attribution reads. Changes nothing.
    /// </summary>
    internal Action<int, Tensor, Tensor?>? ObserveHeads { get; init; }

    /// <summary>
    /// A batch of single-head ablations at one layer: batch row i ablates query head <c>Heads[i]</c> of
    /// <c>Layer</c> (0-based), so one forward of a batch of copies runs one ablation per row. What a head sweep runs.
    /// </summary>
    internal (int Layer, long[] Heads, Ablation Kind)? HeadPerRow { get; init; }

    /// <summary>
    /// A batch of single-head patches at one layer: batch row i takes query head <c>Heads[i]</c>'s output from
    /// <c>Source</c> (H, T, head_dim), every other head its own. What a head-patching sweep runs.
    /// </summary>
    internal (int Layer, long[] Heads, Tensor Source)? HeadPatchPerRow { get; init; }

    /// <summary>Told each layer's head outputs before o_proj and before any edit, (B, H, T, head_dim). Changes
    /// nothing.</summary>
    internal Action<int, Tensor>? ObserveContext { get; init; }

    public bool IsEmpty =>
        Heads.Count == 0
        && Components.Count == 0
        && SkippedLayers.Count == 0
        && Patches.Count == 0
        && HeadPatches.Count == 0;

    /// <summary>Query heads h·n_rep … h·n_rep + n_rep − 1 of KV group <paramref name="group"/>: the heads that read one
    /// KV head.</summary>
    public static IEnumerable<HeadSite> KvGroup(ModelSpec spec, int layer, int group) =>
        Enumerable
            .Range(group * spec.QueriesPerKeyValueHead, spec.QueriesPerKeyValueHead)
            .Select(h => new HeadSite(layer, h));

    /// <summary>Every problem with these interventions for a model and a sequence length, each naming the value and the
    /// allowed range.</summary>
    public IReadOnlyList<string> Problems(ModelSpec spec, long length)
    {
        var problems = new List<string>();
        foreach (var (site, _) in Heads)
        {
            if (site.Layer < 0 || site.Layer >= spec.Layers)
                problems.Add($"head ablation at layer {site.Layer + 1}: layers are 1 to {spec.Layers}.");
            if (site.Head < 0 || site.Head >= spec.AttentionHeads)
                problems.Add($"head ablation of head {site.Head}: heads are 0 to {spec.AttentionHeads - 1}.");
        }
        foreach (var (layer, _, _) in Components)
            if (layer < 0 || layer >= spec.Layers)
                problems.Add($"component ablation at layer {layer + 1}: layers are 1 to {spec.Layers}.");
        foreach (var layer in SkippedLayers)
            if (layer < 0 || layer >= spec.Layers)
                problems.Add($"skip of layer {layer + 1}: layers are 1 to {spec.Layers}.");
        foreach (var patch in HeadPatches)
        {
            if (patch.Site.Layer < 0 || patch.Site.Layer >= spec.Layers)
                problems.Add($"head patch at layer {patch.Site.Layer + 1}: layers are 1 to {spec.Layers}.");
            if (patch.Site.Head < 0 || patch.Site.Head >= spec.AttentionHeads)
                problems.Add($"head patch of head {patch.Site.Head}: heads are 0 to {spec.AttentionHeads - 1}.");
            if (patch.Value.Length != length * spec.HeadDim)
                problems.Add(
                    $"head patch of head {patch.Site.Head} at layer {patch.Site.Layer + 1}: "
                        + $"{patch.Value.Length} values; "
                        + $"{length} positions × head_dim {spec.HeadDim} = {length * spec.HeadDim} are needed."
                );
        }
        foreach (var patch in Patches)
        {
            if (patch.Boundary < 0 || patch.Boundary > spec.Layers)
                problems.Add($"patch after layer {patch.Boundary}: boundaries are 0 (the embedding) to {spec.Layers}.");
            if (patch.Position < 0 || patch.Position >= length)
                problems.Add($"patch at position {patch.Position}: positions are 0 to {length - 1}.");
            if (patch.Value.Length != spec.HiddenSize)
                problems.Add(
                    $"patch after layer {patch.Boundary} at position {patch.Position}: "
                        + $"{patch.Value.Length} values; the residual has {spec.HiddenSize}."
                );
        }
        return problems;
    }

    /// <summary>Throws naming every problem (<see cref="Problems"/>).</summary>
    public void Check(ModelSpec spec, long length)
    {
        var problems = Problems(spec, length);
        if (problems.Count > 0)
            throw new ArgumentException("The interventions do not fit the model: " + string.Join(" ", problems));
    }

    /// <summary>What layer <paramref name="layer"/> (0-based) changes; null when nothing.</summary>
    internal LayerEdits? ForLayer(int layer)
    {
        var zero = Heads
            .Where(h => h.Site.Layer == layer && h.Kind == Ablation.Zero)
            .Select(h => (long)h.Site.Head)
            .Distinct()
            .ToArray();
        var mean = Heads
            .Where(h => h.Site.Layer == layer && h.Kind == Ablation.Mean)
            .Select(h => (long)h.Site.Head)
            .Distinct()
            .ToArray();
        Ablation? Of(Component c) =>
            Components.Where(x => x.Layer == layer && x.Component == c).Select(x => (Ablation?)x.Kind).FirstOrDefault();
        var observe = ObserveHeads is { } all
            ? (heads, bias) => all(layer, heads, bias)
            : (Action<Tensor, Tensor?>?)null;
        var context = ObserveContext is { } every ? c => every(layer, c) : (Action<Tensor>?)null;
        var patches = HeadPatches.Where(p => p.Site.Layer == layer).ToArray();
        var edits = new LayerEdits(
            zero,
            mean,
            Of(Component.Attention),
            Of(Component.Mlp),
            SkippedLayers.Contains(layer)
        )
        {
            ObserveHeads = observe,
            HeadPerRow = HeadPerRow is { } rows && rows.Layer == layer ? (rows.Heads, rows.Kind) : null,
            HeadPatchPerRow =
                HeadPatchPerRow is { } patched && patched.Layer == layer ? (patched.Heads, patched.Source) : null,
            HeadPatches = patches,
            ObserveContext = context,
        };
        return edits.IsEmpty ? null : edits;
    }

    /// <summary>The residual (B, T, d) with this boundary's patches written in (a new tensor; the input when none
    /// apply).</summary>
    internal Tensor Patch(int boundary, Tensor x)
    {
        var here = Patches.Where(p => p.Boundary == boundary).ToArray();
        if (here.Length == 0)
            return x;
        var patched = x.clone();
        foreach (var p in here)
        {
            using var value = tensor(p.Value, device: x.device).to(x.dtype);
            patched[.., p.Position].copy_(value.unsqueeze(0).expand(x.shape[0], -1));
        }
        return patched;
    }
}

/// <summary>What one layer changes: heads zeroed or set to their mean before o_proj, a branch's output ablated, or the
/// whole layer skipped.</summary>
internal sealed record LayerEdits(
    long[] ZeroHeads,
    long[] MeanHeads,
    Ablation? AttentionOut,
    Ablation? MlpOut,
    bool Skip
)
{
    public bool IsEmpty =>
        ZeroHeads.Length == 0
        && MeanHeads.Length == 0
        && AttentionOut is null
        && MlpOut is null
        && !Skip
        && ObserveHeads is null
        && HeadPerRow is null
        && HeadPatchPerRow is null
        && HeadPatches.Length == 0
        && ObserveContext is null;

    /// <summary>See <see cref="Interventions.HeadPatchPerRow"/>, for this layer.</summary>
    public (long[] Heads, Tensor Source)? HeadPatchPerRow { get; init; }

    /// <summary>This layer's <see cref="Interventions.HeadPatches"/>.</summary>
    public HeadPatch[] HeadPatches { get; init; } = [];

    /// <summary>See <see cref="Interventions.ObserveContext"/>, for this layer.</summary>
    public Action<Tensor>? ObserveContext { get; init; }

    /// <summary>See <see cref="Interventions.HeadPerRow"/>, for this layer.</summary>
    public (long[] Heads, Ablation Kind)? HeadPerRow { get; init; }

    /// <summary>See <see cref="Interventions.ObserveHeads"/>, for this layer.</summary>
    public Action<Tensor, Tensor?>? ObserveHeads { get; init; }

    public bool EditsHeads =>
        ZeroHeads.Length > 0
        || MeanHeads.Length > 0
        || HeadPerRow is not null
        || HeadPatchPerRow is not null
        || HeadPatches.Length > 0;

    /// <summary>context (B, H, T, hd) with the ablated heads replaced: zero, or each head's mean over
    /// positions.</summary>
    public Tensor EditHeads(Tensor context)
    {
        var edited = context.clone();
        long t = context.shape[2],
            hd = context.shape[3];
        foreach (var patch in HeadPatches)
        {
            using var value = tensor(patch.Value, device: context.device).to(context.dtype).view(t, hd);
            edited[.., patch.Site.Head].copy_(value.unsqueeze(0).expand(context.shape[0], -1, -1));
        }
        if (HeadPatchPerRow is { } patched)
        {
            if (patched.Heads.Length != context.shape[0])
                throw new ArgumentException(
                    $"A head per row needs one head for each of the batch's {context.shape[0]} rows; "
                        + $"got {patched.Heads.Length}."
                );
            for (var row = 0; row < patched.Heads.Length; row++)
                edited[row, patched.Heads[row]].copy_(patched.Source[patched.Heads[row]]);
        }
        if (HeadPerRow is { } rows)
        {
            if (rows.Heads.Length != context.shape[0])
                throw new ArgumentException(
                    $"A head per row needs one head for each of the batch's {context.shape[0]} rows; "
                        + $"got {rows.Heads.Length}."
                );
            // keep (B, H, 1, 1): 0 at (i, Heads[i]), 1 elsewhere.
            using var keep = ones(
                context.shape[0],
                context.shape[1],
                1,
                1,
                dtype: context.dtype,
                device: context.device
            );
            using var rowIndex = arange(context.shape[0], dtype: ScalarType.Int64, device: context.device);
            using var headIndex = tensor(rows.Heads, device: context.device);
            keep.index_put_(zeros(1, dtype: context.dtype, device: context.device), rowIndex, headIndex);
            edited.mul_(keep);
            if (rows.Kind == Ablation.Mean)
            {
                using var removed = keep.neg().add_(HeldScalars.One, HeldScalars.One);
                using var means = context.mean([2], keepdim: true); // (B, H, 1, hd)
                edited.add_(means.mul(removed));
            }
        }
        if (ZeroHeads.Length > 0)
        {
            using var index = tensor(ZeroHeads, device: context.device);
            edited.index_fill_(1, index, HeldScalars.Zero);
        }
        if (MeanHeads.Length > 0)
        {
            using var index = tensor(MeanHeads, device: context.device);
            using var means = context
                .index_select(1, index)
                .mean([2], keepdim: true)
                .expand(-1, -1, context.shape[2], -1)
                .contiguous();
            edited.index_copy_(1, index, means);
        }
        return edited;
    }

    /// <summary>A branch's contribution (B, T, d) ablated as asked: zero, or its mean over positions.</summary>
    public static Tensor Ablate(Tensor contribution, Ablation? kind) =>
        kind switch
        {
            Ablation.Zero => zeros_like(contribution),
            Ablation.Mean => contribution.mean([1], keepdim: true).expand_as(contribution),
            _ => contribution,
        };
}
