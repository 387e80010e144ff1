using System.Numerics;
using System.Runtime.InteropServices;

namespace Explorer.Model.Weights;

/// <summary>How many NaN and how many ±Inf values a run of raw little-endian floats holds.</summary>
public readonly record struct NonFiniteCount(long NaN, long Infinite)
{
    public long Total => NaN + Infinite;

    public static NonFiniteCount operator +(NonFiniteCount a, NonFiniteCount b) =>
        new(a.NaN + b.NaN, a.Infinite + b.Infinite);

    /// <summary>
    /// Counts them in <paramref name="bytes"/> of safetensors dtype F32, F16 or BF16: a value is not finite when its
    /// exponent bits are all ones (NaN if the mantissa is non-zero, else ±Inf). A vectorised pass finds whether any
    /// are there; only then does a scalar pass tell NaN from Inf, so a clean tensor costs one read at memory speed.
    /// </summary>
    public static NonFiniteCount In(ReadOnlySpan<byte> bytes, string dtype) =>
        dtype switch
        {
            "F32" => Count(MemoryMarshal.Cast<byte, uint>(bytes), 0x7F80_0000u, 0x007F_FFFFu),
            "BF16" => Count(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7F80, (ushort)0x007F),
            "F16" => Count(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7C00, (ushort)0x03FF),
            _ => throw new ArgumentException(
                $"dtype '{dtype}' has no float layout here; use F32, F16 or BF16.",
                nameof(dtype)
            ),
        };

    private static NonFiniteCount Count<T>(ReadOnlySpan<T> values, T exponent, T mantissa)
        where T : unmanaged, IBinaryInteger<T>
    {
        if (!AnyExponentAllOnes(values, exponent))
            return default;
        long nan = 0,
            inf = 0;
        foreach (var v in values)
            if ((v & exponent) == exponent)
            {
                if ((v & mantissa) != T.Zero)
                    nan++;
                else
                    inf++;
            }
        return new NonFiniteCount(nan, inf);
    }

    private static bool AnyExponentAllOnes<T>(ReadOnlySpan<T> values, T exponent)
        where T : unmanaged, IBinaryInteger<T>
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<T>.Count)
        {
            var mask = new Vector<T>(exponent);
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(values);
            foreach (var v in vectors)
                if (Vector.EqualsAny(v & mask, mask))
                    return true;
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < values.Length; i++)
            if ((values[i] & exponent) == exponent)
                return true;
        return false;
    }
}
