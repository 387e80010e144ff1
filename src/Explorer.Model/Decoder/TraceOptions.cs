using TorchSharp;
namespace Explorer.Model.Decoder;

/// <summary>What a traced forward keeps. Everything off runs the fused attention path.</summary>
public sealed record TraceOptions
{
    /// <summary>Per-layer residual-stream statistics (norms, growth, block influence, contributions).</summary>
    public bool Residual { get; init; } = true;

    /// <summary>Attention probabilities per layer and head, and per-head summaries.</summary>
    public bool Attention { get; init; } = true;

    /// <summary>Logit lens at these positions (null: every position); off when <see cref="LogitLens"/> is false.</summary>
    public bool LogitLens { get; init; } = true;

    public IReadOnlyList<int>? LensPositions { get; init; }

    /// <summary>Top tokens kept per layer and position.</summary>
    public int TopK { get; init; } = 5;

    public static TraceOptions Everything { get; } = new();

    /// <summary>Most positions the views' logit lens covers: the last 128 of a longer prompt.</summary>
    public const int ViewLensPositions = 128;

    /// <summary>What the Layers and Attention pages keep for a prompt of <paramref name="length"/> tokens.</summary>
    public static TraceOptions ForViews(int length) => new()
    {
        LensPositions = length <= ViewLensPositions ? null : Enumerable.Range(length - ViewLensPositions, ViewLensPositions).ToArray(),
    };
    public static TraceOptions Nothing { get; } = new() { Residual = false, Attention = false, LogitLens = false };

    public bool KeepsAnything => Residual || Attention || LogitLens;
}
