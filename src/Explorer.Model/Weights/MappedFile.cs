using Explorer.Model.Hosting;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>
/// One safetensors file mapped into memory by libtorch (<c>torch.from_file</c>, private copy-on-write pages), once
/// per dtype the file holds, so each tensor can be a view of it without a copy. The mapping lives as long as any view
/// of it does; disposing this only drops the whole-file tensors. A file changed in place (truncated, rewritten) while
/// a model maps it would fault that model: Explorer's writers, like the Hugging Face hub's, write a new file and
/// rename.
/// </summary>
internal sealed class MappedFile(string path, long length) : IDisposable
{
    private readonly Dictionary<ScalarType, Tensor> _byType = new();

    /// <summary>
    /// The entry as a view of shape <c>entry.Shape</c>, or null when it cannot be one: another dtype than
    /// <paramref name="wanted"/>, or an offset the dtype's alignment does not divide.
    /// </summary>
    public Tensor? TryView(SafetensorsFile file, SafetensorsEntry entry, ScalarType wanted)
    {
        var type = SafetensorsFile.ToScalarType(entry.DType);
        var size = SafetensorsFile.ElementSizes[entry.DType];
        var offset = file.DataStart + entry.Begin;
        if (type != wanted || offset % size != 0 || entry.Elements == 0)
            return null;
        if (!_byType.TryGetValue(type, out var whole))
        {
            // Kept out of any dispose scope: the mapping is this object's, for as long as it lives.
            _byType[type] = whole = torch
                .from_file(path, shared: false, size: length / size, dtype: type)
                .DetachFromDisposeScope();
        }
        using var slice = whole.narrow(0, offset / size, entry.Elements);
        return slice.view(entry.Shape);
    }

    private const int Block = 16 << 20;

    /// <summary>
    /// Brings a mapped view's pages in (one MADV_POPULATE_READ per 16 MiB block instead of a fault per 16 pages) and
    /// counts its NaN and Inf values, blocks spread over the cores: the two together are what loading costs.
    /// </summary>
    public static unsafe NonFiniteCount PopulateAndScan(Tensor view, long bytes, string dtype)
    {
        if (bytes == 0)
            return default;
        var address = Address(view);
        var blocks = (int)((bytes + Block - 1) / Block);
        var total = new NonFiniteCount();
        var gate = new object();
        Parallel.For(
            0,
            blocks,
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
            () => new NonFiniteCount(),
            (i, _, sum) =>
            {
                var start = (long)i * Block;
                var length = (int)Math.Min(Block, bytes - start);
                ProcessMemory.PopulateRead(address + (nint)start, length);
                return sum + NonFiniteCount.In(new ReadOnlySpan<byte>((void*)(address + (nint)start), length), dtype);
            },
            sum =>
            {
                lock (gate)
                    total += sum;
            }
        );
        return total;
    }

    /// <summary>
    /// Maps a view's pages in on the calling thread alone, a block at a time, and counts NaN and Inf when asked;
    /// stops at the first block the kernel cannot map (<see cref="ProcessMemory.Population.Faulted"/>: reading it
    /// would have raised SIGBUS) or at the first when it does not offer populating (nothing read then).
    /// </summary>
    public static unsafe ProcessMemory.Population Populate(
        nint address,
        long bytes,
        string dtype,
        bool scan,
        out NonFiniteCount found
    )
    {
        found = default;
        for (long start = 0; start < bytes; start += Block)
        {
            var length = (int)Math.Min(Block, bytes - start);
            var result = ProcessMemory.Populate(address + (nint)start, length);
            if (result != ProcessMemory.Population.Populated)
                return result;
            if (scan)
                found += NonFiniteCount.In(new ReadOnlySpan<byte>((void*)(address + (nint)start), length), dtype);
        }
        return ProcessMemory.Population.Populated;
    }

    /// <summary>The address of a CPU tensor's first byte.</summary>
    public static unsafe nint Address(Tensor view)
    {
        using var flat = view.view(-1);
        using var head = flat.narrow(0, 0, 1);
        fixed (byte* first = head.bytes)
            return (nint)first;
    }

    public void Dispose()
    {
        foreach (var t in _byType.Values)
            t.Dispose();
        _byType.Clear();
    }
}
