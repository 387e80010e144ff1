using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>One tensor's entry in a safetensors header. Offsets are relative to the data buffer, [Begin, End).</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// The safetensors format: 8-byte little-endian header length N, N bytes of JSON
/// {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the data buffer. Reading validates every
/// entry against the file before any tensor is touched.
/// </summary>
public sealed class SafetensorsFile
{
    /// <summary>Largest header accepted (the 7B's is about 30 KB).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    public static IReadOnlyDictionary<string, int> ElementSizes { get; } = new Dictionary<string, int>
    {
        ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2,
    };

    public string Path { get; }
    public long DataStart { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(string path, long dataStart, IReadOnlyDictionary<string, SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    public static ScalarType ToScalarType(string dtype) => dtype switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"Unsupported safetensors dtype '{dtype}'; use F32, F16 or BF16.", nameof(dtype)),
    };

    public static string FromScalarType(ScalarType type) => type switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        _ => throw new ArgumentException($"Cannot save {type}; use Float32, Float16 or BFloat16.", nameof(type)),
    };

    /// <summary>Reads and validates the header; throws <see cref="CheckpointException"/> naming what is wrong.</summary>
    public static SafetensorsFile Open(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path))
            throw new CheckpointException($"{path} does not exist.");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var length = stream.Length;
        if (length < 8)
            throw new CheckpointException($"{name} is {length} bytes: too short for a safetensors file (an 8-byte header length comes first).");
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(length - 8))
            throw new CheckpointException($"{name}: header length {headerLength:N0} goes beyond the end of the file ({length:N0} bytes).");
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointException($"{name}: header length {headerLength:N0} is over the {MaxHeaderBytes:N0} bytes allowed.");
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var (entries, metadata) = ParseHeader(name, header, length - dataStart);
        return new SafetensorsFile(path, dataStart, entries, metadata);
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string file, byte[] header, long bufferLength)
    {
        JsonDocument doc;
        try
        {
            if (!System.Text.Unicode.Utf8.IsValid(header))
                throw new CheckpointException($"{file}: the header is not valid UTF-8.");
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{file}: the header is not valid JSON ({e.Message.Split(" Path:")[0]}).");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{file}: the header must be a JSON object, not {doc.RootElement.ValueKind}.");
            var problems = new List<string>();
            var entries = new Dictionary<string, SafetensorsEntry>();
            var metadata = new Dictionary<string, string>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in property.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                if (ParseEntry(property, bufferLength, out var entry) is { } problem)
                    problems.Add($"{property.Name}: {problem}");
                else
                    entries[entry!.Name] = entry;
            }
            // Every byte belongs to at most one tensor.
            SafetensorsEntry? previous = null;
            foreach (var e in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
            {
                if (previous is not null && e.Begin < previous.End && e.End > e.Begin)
                    problems.Add($"{e.Name}: bytes [{e.Begin}, {e.End}) overlap {previous.Name} [{previous.Begin}, {previous.End}).");
                if (e.End > e.Begin && (previous is null || e.End > previous.End))
                    previous = e;
            }
            if (problems.Count > 0)
                throw new CheckpointException($"{file} is not a valid safetensors file:", problems);
            return (entries, metadata);
        }
    }

    private static string? ParseEntry(JsonProperty property, long bufferLength, out SafetensorsEntry? entry)
    {
        entry = null;
        var v = property.Value;
        if (v.ValueKind != JsonValueKind.Object)
            return "the entry must be an object with dtype, shape and data_offsets.";
        if (!v.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            return "dtype is missing or not a string.";
        var dtype = dtypeElement.GetString()!;
        if (!ElementSizes.TryGetValue(dtype, out var size))
            return $"dtype '{dtype}' is not supported; weights must be F32, F16 or BF16.";
        if (!v.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            return "shape is missing or not an array.";
        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var n) || n < 0)
                return $"shape {shapeElement.GetRawText()} must hold non-negative integers.";
            shape.Add(n);
        }
        if (!v.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end))
            return "data_offsets must be an array of two integers [begin, end).";
        if (begin < 0 || end < begin)
            return $"data_offsets [{begin}, {end}) are not an interval.";
        if (end > bufferLength)
            return $"data_offsets [{begin}, {end}) go beyond the data ({bufferLength:N0} bytes): the file is truncated or the offsets are out of range.";
        long elements;
        try
        {
            elements = shape.Aggregate(1L, (a, b) => checked(a * b));
        }
        catch (OverflowException)
        {
            return $"shape {shapeElement.GetRawText()} is too large.";
        }
        if (end - begin != elements * size)
            return $"shape {shapeElement.GetRawText()} of {dtype} needs {elements * size:N0} bytes, but data_offsets [{begin}, {end}) hold {end - begin:N0}.";
        entry = new SafetensorsEntry(property.Name, dtype, shape.ToArray(), begin, end);
        return null;
    }

    /// <summary>Reads one tensor's bytes straight into <paramref name="destination"/> (same dtype, contiguous, CPU).</summary>
    public void ReadInto(SafetensorsEntry entry, Tensor destination, FileStream stream)
    {
        stream.Position = DataStart + entry.Begin;
        stream.ReadExactly(destination.bytes);
    }

    /// <summary>Writes tensors to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void Write(string path, IReadOnlyList<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, tensor) in tensors)
        {
            var bytes = tensor.numel() * tensor.element_size();
            header[name] = new { dtype = FromScalarType(tensor.dtype), shape = tensor.shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (json.Length + 7) / 8 * 8; // the data buffer starts 8-byte aligned; pad with spaces
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
            stream.Write(prefix);
            stream.Write(json);
            for (var i = json.Length; i < padded; i++)
                stream.WriteByte((byte)' ');
            foreach (var (_, tensor) in tensors)
            {
                using var cpu = tensor.detach().to(CPU).contiguous();
                stream.Write(cpu.bytes);
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
