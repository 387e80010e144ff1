namespace Explorer.Core.Accounting;

/// <summary>A numeric storage format and its width.</summary>
public sealed record DataType(string Name, int Bits)
{
    public static readonly DataType Float32 = new("fp32", 32);
    public static readonly DataType BFloat16 = new("bf16", 16);
    public static readonly DataType Float16 = new("fp16", 16);
    public static readonly DataType Float8 = new("fp8", 8);
    public static readonly DataType Int8 = new("int8", 8);
    public static readonly DataType Int4 = new("int4", 4);

    public static IReadOnlyList<DataType> All { get; } = [Float32, BFloat16, Float16, Float8, Int8, Int4];

    /// <summary>Bytes needed for <paramref name="elements"/> values, rounded up to whole bytes.</summary>
    public long BytesFor(long elements) => checked(elements * Bits + 7) / 8;

    public static DataType Parse(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name?.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException(
            $"Unknown dtype '{name}'. Known: {string.Join(", ", All.Select(t => t.Name))}.",
            nameof(name)
        );

    public override string ToString() => Name;
}
