using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>How a decoder is built: where, in what precision, from which seed.</summary>
public sealed record DecoderOptions
{
    /// <summary>Seed of the deterministic initialisation.</summary>
    public ulong Seed { get; init; } = 1234;

    /// <summary>Float32 or BFloat16.</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>CPU, CUDA, or META (shapes only, no memory; cannot run).</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>False when a checkpoint will supply the weights: they are left as the constructors make them.</summary>
    public bool Initialise { get; init; } = true;

    /// <summary>Standard deviation of the initial weights; output projections are scaled by 1/√(2·layers).</summary>
    public double InitStd { get; init; } = 0.02;
}
