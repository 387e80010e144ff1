using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;

namespace Explorer.Cli;

/// <summary>
/// <c>--ablate L.H[,L.H…]</c>, <c>--skip L[,L…]</c> and <c>--patch L:T[,L:T…] --source IDS</c> as interventions, layers
/// numbered 1…L and heads 0…H−1 as the pages number them; a patch's L is the boundary (0: the embedding; l: after
/// layer l). Every bad value is named with the range allowed.
/// </summary>
public static class InterventionArguments
{
    public static Interventions Parse(
        LiveModel live,
        int[] ids,
        string? ablate,
        string? skip,
        string? patch,
        string? source
    )
    {
        var spec = live.Spec;
        var heads = Items(ablate).Select(item => (Head(item, spec), Ablation.Zero)).ToArray();
        var skipped = Items(skip).Select(item => Layer("--skip", item, item, spec) - 1).ToArray();
        var patches = Array.Empty<ResidualPatch>();
        if (patch is null != source is null)
            throw new ArgumentException(
                "--patch L:T and --source IDS go together: the patched states come from the source run."
            );
        if (patch is not null)
        {
            var sourceIds = ForwardCommand.ParseTokens(source!);
            if (sourceIds.Length != ids.Length)
                throw new ArgumentException(
                    $"--source has {sourceIds.Length} tokens; the prompt has {ids.Length}: a patch "
                        + "needs a source of the same length."
                );
            live.CheckTokens(sourceIds, ForwardCommand.DefaultMaxTokens);
            var sites = Items(patch).Select(item => Site(item, spec, ids.Length)).ToArray();
            using var input = LiveModel.ToTensor(sourceIds);
            using var states = live.Decoder.ResidualStates(input);
            patches = sites
                .Select(s =>
                {
                    using var row = states[s.Boundary, s.Position].contiguous();
                    return new ResidualPatch(s.Boundary, s.Position, row.data<float>().ToArray());
                })
                .ToArray();
        }
        var interventions = new Interventions
        {
            Heads = heads,
            SkippedLayers = skipped,
            Patches = patches,
        };
        interventions.Check(spec, ids.Length);
        return interventions;
    }

    private static string[] Items(string? list) =>
        list is null ? [] : list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private static int Layer(string option, string item, string text, ModelSpec spec)
    {
        if (!int.TryParse(text, out var layer) || layer < 1 || layer > spec.Layers)
            throw new ArgumentException($"{option} {item}: layer '{text}' must be 1 to {spec.Layers}.");
        return layer;
    }

    private static HeadSite Head(string item, ModelSpec spec)
    {
        var parts = item.Split('.');
        if (parts.Length != 2)
            throw new ArgumentException(
                $"--ablate {item}: give LAYER.HEAD, e.g. 3.1 (layers 1 to {spec.Layers}, heads 0 to "
                    + $"{spec.AttentionHeads - 1})."
            );
        var layer = Layer("--ablate", item, parts[0], spec);
        if (!int.TryParse(parts[1], out var head) || head < 0 || head >= spec.AttentionHeads)
            throw new ArgumentException($"--ablate {item}: head '{parts[1]}' must be 0 to {spec.AttentionHeads - 1}.");
        return new HeadSite(layer - 1, head);
    }

    private static (int Boundary, int Position) Site(string item, ModelSpec spec, int length)
    {
        var parts = item.Split(':');
        if (parts.Length != 2)
            throw new ArgumentException(
                $"--patch {item}: give LAYER:POSITION, e.g. 2:5 (layers 0, the embedding, to "
                    + $"{spec.Layers}; positions 0 to {length - 1})."
            );
        if (!int.TryParse(parts[0], out var boundary) || boundary < 0 || boundary > spec.Layers)
            throw new ArgumentException(
                $"--patch {item}: layer '{parts[0]}' must be 0 (the embedding) to {spec.Layers}."
            );
        if (!int.TryParse(parts[1], out var position) || position < 0 || position >= length)
            throw new ArgumentException($"--patch {item}: position '{parts[1]}' must be 0 to {length - 1}.");
        return (boundary, position);
    }
}
