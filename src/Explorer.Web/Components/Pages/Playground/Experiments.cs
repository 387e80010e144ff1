using Explorer.Core.Specs;

namespace Explorer.Web.Components.Pages.Playground;

public sealed record ExperimentRun(string Name, ModelSpec Spec);

/// <summary>A question answered by training a few small models side by side, their loss curves on one chart.</summary>
public sealed record Experiment(string Key, string Title, string Question, IReadOnlyList<ExperimentRun> Runs);

public static class Experiments
{
    private static ModelSpec Shape(
        string name,
        int layers,
        int hidden,
        int heads,
        int kvHeads,
        NormPlacement norm = NormPlacement.Pre
    ) =>
        new(
            name,
            layers,
            hidden,
            (int)Math.Round(hidden * 2.6875 / 16) * 16,
            heads,
            kvHeads,
            MiniPresets.Vocabulary,
            1024,
            NormPlacement: norm
        );

    public static IReadOnlyList<Experiment> All { get; } =
    [
        new(
            "mini-7b",
            "Train deepseek-7b-mini",
            "How fast does the 30-layer mini learn the built-in corpus?",
            [new ExperimentRun("deepseek-7b-mini", MiniPresets.DeepSeek7BMini)]
        ),
        // 95 · 12.06 · 64² ≈ 30 · 12.06 · 112² ≈ 4.6 M parameters outside the embedding and head.
        new(
            "depth-width",
            "Depth against width",
            "95 narrow layers against 30 wider ones, about the same non-embedding parameters: which "
                + "learns faster per step?",
            [
                new ExperimentRun("95 × d64", Shape("95x64", 95, 64, 4, 4)),
                new ExperimentRun("30 × d112", Shape("30x112", 30, 112, 7, 7)),
            ]
        ),
        new(
            "norm",
            "Pre-norm against post-norm at depth 95",
            "Why every deep LLM uses pre-norm: watch the gradient norms per layer.",
            [
                new ExperimentRun("95 × d64 pre-norm", Shape("95x64-pre", 95, 64, 4, 4)),
                new ExperimentRun("95 × d64 post-norm", Shape("95x64-post", 95, 64, 4, 4, NormPlacement.Post)),
            ]
        ),
        new(
            "gqa",
            "GQA against MHA",
            "Sharing one KV head among 8 query heads (as the 67B does): what does it cost in loss?",
            [
                new ExperimentRun("30 × d128 MHA", Shape("30x128-mha", 30, 128, 8, 8)),
                new ExperimentRun("30 × d128 GQA 8:1", Shape("30x128-gqa", 30, 128, 8, 1)),
            ]
        ),
    ];
}
