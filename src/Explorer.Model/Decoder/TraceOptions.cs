using TorchSharp;

namespace Explorer.Model.Decoder;

/// <summary>What a traced forward keeps. Everything off runs the fused attention path.</summary>
public sealed record TraceOptions
{
    /// <summary>Per-layer residual-stream statistics (norms, growth, block influence, contributions).</summary>
    public bool Residual { get; init; } = true;

    /// <summary>Attention probabilities per layer and head, and per-head summaries.</summary>
    public bool Attention { get; init; } = true;

    /// <summary>Logit lens at these positions (null: every position); off when <see cref="LogitLens"/> is
    /// false.</summary>
    public bool LogitLens { get; init; } = true;

    public IReadOnlyList<int>? LensPositions { get; init; }

    /// <summary>
    /// Positions whose residual state is kept at every layer so the logit lens there can be completed later
    /// (<see cref="DecoderTrace.CompleteLens"/>) instead of during the forward; null keeps none.
    /// </summary>
    public IReadOnlyList<int>? DeferredLensPositions { get; init; }

    /// <summary>Top tokens kept per layer and position.</summary>
    public int TopK { get; init; } = 5;

    public static TraceOptions Everything { get; } = new();

    /// <summary>Most positions the views' logit lens covers: the last 128 of a longer prompt.</summary>
    public const int ViewLensPositions = 128;

    /// <summary>
    /// What the live pages keep for a prompt of <paramref name="length"/> tokens: residual statistics, the states to
    /// read the logit lens at the last 128 positions after the forward, and the attention maps when a page shows them.
    /// No lens runs in the forward: the first charts need only the forward's statistics, and even the lens at the last
    /// position reads the whole unembedding (its cost: docs/benchmarks.md). The views read the last position next
    /// (<see cref="DecoderTrace.ReadLastLens"/>) and every position after, or on demand.
    /// </summary>
    public static TraceOptions ForViews(int length, bool attention = true) =>
        new()
        {
            Attention = attention,
            LogitLens = false,
            DeferredLensPositions = Enumerable
                .Range(Math.Max(0, length - ViewLensPositions), Math.Min(length, ViewLensPositions))
                .ToArray(),
        };

    public static TraceOptions Nothing { get; } =
        new()
        {
            Residual = false,
            Attention = false,
            LogitLens = false,
        };
}
