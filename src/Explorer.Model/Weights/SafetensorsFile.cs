using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>One tensor's entry in a safetensors header. Offsets are relative to the data buffer, [Begin,
/// End).</summary>
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

    public static IReadOnlyDictionary<string, int> ElementSizes { get; } =
        new Dictionary<string, int>
        {
            ["F32"] = 4,
            ["F16"] = 2,
            ["BF16"] = 2,
        };

    public string Path { get; }
    public long DataStart { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafetensorsFile(
        string path,
        long dataStart,
        IReadOnlyDictionary<string, SafetensorsEntry> entries,
        IReadOnlyDictionary<string, string> metadata
    )
    {
        Path = path;
        DataStart = dataStart;
        Entries = entries;
        Metadata = metadata;
    }

    public static ScalarType ToScalarType(string dtype) =>
        dtype switch
        {
            "F32" => ScalarType.Float32,
            "F16" => ScalarType.Float16,
            "BF16" => ScalarType.BFloat16,
            _ => throw new ArgumentException(
                $"Unsupported safetensors dtype '{dtype}'; use F32, F16 or BF16.",
                nameof(dtype)
            ),
        };

    public static string FromScalarType(ScalarType type) =>
        type switch
        {
            ScalarType.Float32 => "F32",
            ScalarType.Float16 => "F16",
            ScalarType.BFloat16 => "BF16",
            _ => throw new ArgumentException($"Cannot save {type}; use Float32, Float16 or BFloat16.", nameof(type)),
        };

    /// <summary>Reads and validates the header; throws <see cref="CheckpointException"/> naming what is
    /// wrong.</summary>
    public static SafetensorsFile Open(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        if (!File.Exists(path))
            throw new CheckpointException($"{path} does not exist.");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var length = stream.Length;
        if (length < 8)
            throw new CheckpointException(
                $"{name} is {length} bytes: too short for a safetensors file (an 8-byte header length comes first)."
            );
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(length - 8))
            throw new CheckpointException(
                $"{name}: header length {headerLength:N0} goes beyond the end of the file ({length:N0} bytes)."
            );
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointException(
                $"{name}: header length {headerLength:N0} is over the {MaxHeaderBytes:N0} bytes allowed."
            );
        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var (entries, metadata) = ParseHeader(name, header, length - dataStart);
        return new SafetensorsFile(path, dataStart, entries, metadata);
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(
        string file,
        byte[] header,
        long bufferLength
    )
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
                throw new CheckpointException(
                    $"{file}: the header must be a JSON object, not {doc.RootElement.ValueKind}."
                );
            var problems = new List<string>();
            var entries = new Dictionary<string, SafetensorsEntry>();
            var metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                // JSON allows a key twice and a parser keeps one; a checkpoint must not depend on which.
                if (!seen.Add(property.Name))
                {
                    problems.Add($"{property.Name}: appears more than once in the header.");
                    continue;
                }
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        problems.Add($"__metadata__: must be an object of strings, not {property.Value.ValueKind}.");
                    else
                        foreach (var m in property.Value.EnumerateObject())
                            metadata[m.Name] =
                                m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                if (ParseEntry(property, bufferLength, out var entry) is { } problem)
                    problems.Add($"{property.Name}: {problem}");
                else
                    entries[entry!.Name] = entry;
            }
            if (problems.Count == 0)
                problems.AddRange(Coverage(entries.Values, bufferLength));
            if (problems.Count > 0)
                throw new CheckpointException($"{file} is not a valid safetensors file:", problems);
            return (entries, metadata);
        }
    }

    /// <summary>
    /// As the format requires, the tensors tile the data buffer exactly: no byte in two tensors, none in no tensor.
    /// </summary>
    private static IEnumerable<string> Coverage(IEnumerable<SafetensorsEntry> entries, long bufferLength)
    {
        long covered = 0;
        SafetensorsEntry? previous = null;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin < covered)
                yield return $"{e.Name}: bytes [{e.Begin}, {e.End}) overlap {previous!.Name} [{previous.Begin}, "
                    + $"{previous.End}).";
            else if (e.Begin > covered)
                yield return $"{e.Name}: bytes [{covered}, {e.Begin}) before it belong to no tensor (a gap in the "
                    + "data).";
            if (e.End >= covered)
            {
                covered = e.End;
                previous = e;
            }
        }
        if (covered < bufferLength)
            yield return $"the last {bufferLength - covered:N0} bytes of the data (from {covered:N0}) belong to no "
                + "tensor.";
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
        if (shapeElement.GetArrayLength() > MaxRank)
            return $"shape {Clip(shapeElement.GetRawText())} has {shapeElement.GetArrayLength()} dimensions; "
                + $"at most {MaxRank} are allowed.";
        var shape = new List<long>();
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var n) || n < 0)
                return $"shape {Clip(shapeElement.GetRawText())} must hold non-negative integers.";
            shape.Add(n);
        }
        if (
            !v.TryGetProperty("data_offsets", out var offsets)
            || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number
            || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out var begin)
            || !offsets[1].TryGetInt64(out var end)
        )
            return "data_offsets must be an array of two integers [begin, end); got "
                + $"{Clip(offsets.ValueKind == JsonValueKind.Undefined ? "nothing" : offsets.GetRawText())}.";
        if (begin < 0 || end < begin)
            return $"data_offsets [{begin}, {end}) are not an interval.";
        if (end > bufferLength)
            return $"data_offsets [{begin}, {end}) go beyond the data ({bufferLength:N0} bytes): the file is "
                + "truncated or the offsets are out of range.";
        long bytes;
        try
        {
            bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * size);
        }
        catch (OverflowException)
        {
            return $"shape {Clip(shapeElement.GetRawText())} of {dtype} is too large: its byte size does not "
                + "fit in 64 bits.";
        }
        if (end - begin != bytes)
            return $"shape {Clip(shapeElement.GetRawText())} of {dtype} needs {bytes:N0} bytes, but "
                + $"data_offsets [{begin}, {end}) hold {end - begin:N0}.";
        entry = new SafetensorsEntry(property.Name, dtype, shape.ToArray(), begin, end);
        return null;
    }

    /// <summary>Most dimensions a tensor may have (PyTorch's own limit is 64).</summary>
    public const int MaxRank = 64;

    private static string Clip(string text) => text.Length <= 80 ? text : text[..77] + "...";

    /// <summary>Bytes read per step: bounds the staging memory of a conversion and spaces progress reports.</summary>
    public const int ChunkBytes = 64 << 20;

    /// <summary>
    /// Reads one tensor's bytes into <paramref name="destination"/> (contiguous, CPU), in chunks of at most
    /// <see cref="ChunkBytes"/>; a dtype other than the file's goes through one chunk-sized staging buffer, so no
    /// second copy of the tensor is ever made. Returns how many of its values are NaN or infinite (none counted when
    /// <paramref name="scan"/> is false: a streamed layer read again after its first, checked read).
    /// </summary>
    public NonFiniteCount ReadInto(
        SafetensorsEntry entry,
        Tensor destination,
        FileStream stream,
        Action<long>? bytesRead = null,
        int chunkBytes = ChunkBytes,
        bool scan = true
    )
    {
        if (
            !destination.is_contiguous()
            || destination.device_type != DeviceType.CPU
            || destination.numel() != entry.Elements
        )
            throw new ArgumentException(
                $"{entry.Name}: the destination must be a contiguous CPU tensor of {entry.Elements:N0} values.",
                nameof(destination)
            );
        var fileType = ToScalarType(entry.DType);
        var elementSize = ElementSizes[entry.DType];
        var perChunk = Math.Max(1, chunkBytes / elementSize);
        using var flat = destination.view(-1);
        using var staging =
            fileType == destination.dtype
                ? null
                : torch.empty(Math.Min(perChunk, Math.Max(1, entry.Elements)), fileType);
        stream.Position = DataStart + entry.Begin;
        if (staging is null && entry.Elements > 0)
            AdviseHugePages(flat, entry.End - entry.Begin);
        var found = new NonFiniteCount();
        for (long start = 0; start < entry.Elements; start += perChunk)
        {
            var count = Math.Min(perChunk, entry.Elements - start);
            using var part = flat.narrow(0, start, count);
            using var buffer = staging is null ? part.alias() : staging.narrow(0, 0, count);
            var span = buffer.bytes;
            stream.ReadExactly(span);
            if (scan)
                found += NonFiniteCount.In(span, entry.DType);
            if (staging is not null)
                part.copy_(buffer);
            bytesRead?.Invoke(count * elementSize);
        }
        return found;
    }

    private static unsafe void AdviseHugePages(Tensor flat, long bytes)
    {
        using var head = flat.narrow(0, 0, 1);
        fixed (byte* first = head.bytes)
            Hosting.ProcessMemory.AdviseHugePages((nint)first, bytes);
    }

    /// <summary>Writes tensors to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void Write(
        string path,
        IReadOnlyList<(string Name, Tensor Tensor)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null
    ) =>
        Write(
            path,
            tensors.Select(t => new TensorLayout(t.Name, t.Tensor.dtype, t.Tensor.shape)).ToArray(),
            (i, stream) =>
            {
                using var cpu = tensors[i].Tensor.detach().to(CPU).contiguous();
                stream.Write(cpu.bytes);
            },
            metadata
        );

    /// <summary>A tensor's name, dtype and shape: what its header entry says before its bytes exist.</summary>
    public sealed record TensorLayout(string Name, ScalarType DType, long[] Shape)
    {
        public long Bytes => Shape.Aggregate(1L, (a, b) => a * b) * ElementSizes[FromScalarType(DType)];
    }

    /// <summary>
    /// Writes a file whose tensors are produced one at a time by <paramref name="writeData"/> (which must write exactly
    /// each layout's bytes), so a file larger than memory can be written. Atomic: a temporary file, then a rename.
    /// </summary>
    public static void Write(
        string path,
        IReadOnlyList<TensorLayout> layout,
        Action<int, Stream> writeData,
        IReadOnlyDictionary<string, string>? metadata = null
    )
    {
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 })
            header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var tensor in layout)
        {
            header[tensor.Name] = new
            {
                dtype = FromScalarType(tensor.DType),
                shape = tensor.Shape,
                data_offsets = new[] { offset, offset + tensor.Bytes },
            };
            offset += tensor.Bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        var padded = (json.Length + 7) / 8 * 8; // the data buffer starts 8-byte aligned; pad with spaces
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Span<byte> prefix = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
            stream.Write(prefix);
            stream.Write(json);
            for (var i = json.Length; i < padded; i++)
                stream.WriteByte((byte)' ');
            for (var i = 0; i < layout.Count; i++)
            {
                var before = stream.Position;
                writeData(i, stream);
                if (stream.Position - before != layout[i].Bytes)
                    throw new InvalidOperationException(
                        $"{layout[i].Name}: wrote {stream.Position - before:N0} bytes, its header says "
                            + $"{layout[i].Bytes:N0}."
                    );
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
