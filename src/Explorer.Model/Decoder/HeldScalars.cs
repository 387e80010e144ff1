using TorchSharp;

namespace Explorer.Model.Decoder;

/// <summary>
/// Scalars the forward passes to libtorch, held for the life of the process. TorchSharp (0.107, and its main branch)
/// turns a number given where it takes a <see cref="Scalar"/> (the alpha of <c>x + y</c> and <c>add_</c>, a fill value,
/// an exponent) into a native object that nothing references once its handle has been read; a garbage collection during
/// the native call can finalize and free it while libtorch still reads it, which shows as crashes and libtorch asserts
/// ("toFloat", Scalar.h) under load. Code here passes these instead, or a <c>using</c> Scalar that the calling
/// frame holds until the call returns; tensors are made inside dispose scopes, which hold them.
/// </summary>
internal static class HeldScalars
{
    public static readonly Scalar One = 1.0.ToScalar();
    public static readonly Scalar Zero = 0.0.ToScalar();
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();

    /// <summary>The floor under a norm that divides (a zero residual state would otherwise give NaN).</summary>
    public static readonly Scalar NormFloor = 1e-12.ToScalar();

    /// <summary>a + b, with the alpha held.</summary>
    public static torch.Tensor Plus(this torch.Tensor a, torch.Tensor b) => a.add(b, One);
}
