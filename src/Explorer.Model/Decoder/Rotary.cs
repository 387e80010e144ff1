using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>
/// Rotary position embeddings in Hugging Face's "halves" form: inv_freq_i = θ^(−2i/head_dim), and
/// rotate_half pairs element i with element i + head_dim/2.
/// </summary>
public static class Rotary
{
    /// <summary>cos and sin tables for positions [0, length): each (length, head_dim), fp32.</summary>
    public static (Tensor Cos, Tensor Sin) Tables(long length, long headDim, double theta, Device device)
    {
        using var scope = NewDisposeScope();
        var invFreq = 1.0 / torch.pow(theta, torch.arange(0, headDim, 2, ScalarType.Float64, device) / headDim); // (hd/2)
        var positions = torch.arange(length, ScalarType.Float64, device);                                         // (T)
        var freqs = torch.outer(positions, invFreq);                                                               // (T, hd/2)
        var angles = torch.cat([freqs, freqs], -1);                                                                // (T, hd)
        return (angles.cos().to(ScalarType.Float32).MoveToOuterDisposeScope(),
                angles.sin().to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>x · cos + rotate_half(x) · sin for x of shape (B, heads, T, head_dim).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = torch.cat([-x2, x1], -1);
        return (x * cos.to(x.dtype) + rotated * sin.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
