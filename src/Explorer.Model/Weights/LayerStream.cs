using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>
/// A checkpoint's decoder layers brought in from its safetensors files as a forward reaches them, into two layer
/// buffers: while one layer computes, the next is brought into the other. Only two layers are ever held (the files'
/// pages stay in the kernel's page cache, which it can drop), so a model far larger than the machine runs, one layer
/// at a time. Loads happen on one loader thread, in layer order; a file that fails part-way fails the forward with
/// the file and tensor named.
/// <para>
/// Mapped: a buffer's parameters become views of the files mapped into memory (<see cref="MappedFile"/>, as a resident
/// load does), their pages mapped in one call each (MADV_POPULATE_READ) on the loader thread. Nothing is copied, so
/// the loader takes almost no CPU from the forward. When the page cache holds every layer (the only case a load maps
/// unless asked), the pages stay mapped after use: they are clean file pages the kernel may drop, and mapping them in
/// again on every forward would cost a third of the forward (docs/streaming.md). Otherwise (<c>releasePages</c>) a
/// buffer's pages leave the process (MADV_DONTNEED) when it takes its next layer. The populate call is also the guard:
/// a file cut short fails there with a message, before anything reads past its end (SIGBUS). A file cut short while
/// its layer computes still faults, as for a resident model.
/// Read (<c>mapFiles: false</c>, and wherever a tensor cannot be a view or the kernel cannot populate): the bytes are
/// read into the buffer's own memory.
/// </para>
/// </summary>
public sealed class LayerStream : ILayerSource
{
    private const int Buffers = 2;
    private readonly ModelSpec _spec;
    private readonly IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> _tensors;
    private readonly DecoderLayer[] _buffers = new DecoderLayer[Buffers];
    private readonly (string Name, Parameter Parameter)[][] _parameters = new (string, Parameter)[Buffers][];
    private readonly Task[] _loads = new Task[Buffers];
    private readonly int[] _held = new int[Buffers];
    private readonly Dictionary<string, FileStream> _files = new();
    private readonly Dictionary<string, MappedFile> _maps = new();
    private readonly bool[][] _viewed = new bool[Buffers][]; // parameters that are views of a mapped file now

    // mapped in for the buffer's layer
    private readonly List<(nint Address, long Bytes)>[] _pages = new List<(nint, long)>[Buffers];
    private bool _mapFiles;
    private bool _downward; // the pass under way runs from the last layer down
    private readonly bool _releasePages;
    private readonly bool[] _checked; // layers whose values were scanned for NaN and Inf on a first, complete read
    private readonly object _gate = new();
    private Task _tail = Task.CompletedTask;
    private long _bytesRead;
    private long _readTicks;
    private long _waitTicks;

    internal LayerStream(
        ModelSpec spec,
        IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors,
        ScalarType dtype,
        bool mapFiles = true,
        bool releasePages = true
    )
    {
        _spec = spec;
        _mapFiles = mapFiles && OperatingSystem.IsLinux();
        _releasePages = releasePages;
        _tensors = tensors;
        _checked = new bool[spec.Layers];
        for (var b = 0; b < Buffers; b++)
        {
            _buffers[b] = new DecoderLayer($"buffer{b}", spec, CPU, dtype);
            _buffers[b].eval();
            _parameters[b] = _buffers[b].named_parameters().Select(p => (p.name, p.parameter)).ToArray();
            _loads[b] = Task.CompletedTask;
            _held[b] = -1;
            _viewed[b] = new bool[_parameters[b].Length];
            _pages[b] = new List<(nint, long)>();
        }
    }

    /// <summary>Bytes one layer's weights take in memory (one buffer).</summary>
    public long LayerBytes => _parameters[0].Sum(p => p.Parameter.numel() * p.Parameter.element_size());

    /// <summary>
    /// Since the stream opened: bytes read from the files, the loader's time reading them, and the time forwards spent
    /// waiting for a layer that was not read yet (what reading added to computing).
    /// </summary>
    public (long Bytes, TimeSpan Reading, TimeSpan Waiting) Counters
    {
        get
        {
            lock (_gate)
                return (_bytesRead, TimeSpan.FromTicks(_readTicks), TimeSpan.FromTicks(_waitTicks));
        }
    }

    /// <summary>The checkpoint name of a layer's parameter: <c>model.layers.N.</c> + its name inside the
    /// layer.</summary>
    public static string CheckpointName(int layer, string parameter) => $"model.layers.{layer}.{parameter}";

    /// <summary>Starts a forward: the first two layers are read (after whatever a cancelled forward left
    /// pending).</summary>
    public void BeginForward()
    {
        _downward = false;
        for (var layer = 0; layer < Math.Min(Buffers, _spec.Layers); layer++)
            Schedule(layer);
    }

    /// <summary>Starts a pass from the top: the last two layers are read first, then each one below as a layer is
    /// released.</summary>
    public void BeginBackward()
    {
        _downward = true;
        for (var layer = _spec.Layers - 1; layer >= Math.Max(0, _spec.Layers - Buffers); layer--)
            Schedule(layer);
    }

    /// <summary>Layer <paramref name="layer"/>'s weights, once read; throws the read's failure.</summary>
    public DecoderLayer Acquire(int layer, CancellationToken cancellation)
    {
        var buffer = layer % Buffers;
        Task load;
        lock (_gate)
            load = _loads[buffer];
        var waiting = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            load.Wait(cancellation);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            throw e.InnerExceptions[0] is CheckpointException c
                ? c
                : new CheckpointException(e.InnerExceptions[0].Message);
        }
        lock (_gate)
        {
            _waitTicks += System.Diagnostics.Stopwatch.GetElapsedTime(waiting).Ticks;
            if (_held[buffer] != layer)
                throw new InvalidOperationException(
                    $"Layer {layer} was asked for, but its buffer holds layer {_held[buffer]}."
                );
        }
        return _buffers[buffer];
    }

    /// <summary>Layer <paramref name="layer"/> is done: its buffer takes the layer two further on (two further down in
    /// a backward pass).</summary>
    public void Release(int layer)
    {
        var next = _downward ? layer - Buffers : layer + Buffers;
        if (next >= 0 && next < _spec.Layers)
            Schedule(next);
    }

    /// <summary>Waits for reads still under way (a cancelled or failed forward leaves some): the buffers are then
    /// idle.</summary>
    public void Settle()
    {
        Task tail;
        lock (_gate)
            tail = _tail;
        try
        {
            tail.Wait();
        }
        catch (AggregateException)
        {
            // The failure was the forward's to report; the next forward reads its layers again.
        }
    }

    private void Schedule(int layer)
    {
        var buffer = layer % Buffers;
        lock (_gate)
        {
            _held[buffer] = -1;
            // One read at a time, in order: after the previous read, whether it failed or not.
            _tail = _loads[buffer] = _tail.ContinueWith(
                _ => Read(layer, buffer),
                CancellationToken.None,
                TaskContinuationOptions.None,
                TaskScheduler.Default
            );
        }
    }

    private void Read(int layer, int buffer)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        long bytes = 0;
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        DropPages(buffer); // its previous layer is done
        for (var i = 0; i < _parameters[buffer].Length; i++)
        {
            var (name, parameter) = _parameters[buffer][i];
            var key = CheckpointName(layer, name);
            if (!_tensors.TryGetValue(key, out var found))
                throw new CheckpointException($"{key} is not in the checkpoint.");
            var (file, entry) = found;
            // Every value is checked the first time its layer is read; later reads only bring the pages in.
            var scan = !_checked[layer];
            NonFiniteCount nonFinite;
            try
            {
                nonFinite = Map(buffer, i, file, entry, scan, key, layer) ?? ReadInto(buffer, i, file, entry, scan);
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or UnauthorizedAccessException)
            {
                throw new CheckpointException(
                    $"{Path.GetFileName(file.Path)}: reading {key} for layer {layer} failed: {e.Message}"
                );
            }
            if (nonFinite.Total > 0)
                throw new CheckpointException(
                    $"{key} in {Path.GetFileName(file.Path)}: {nonFinite.NaN:N0} NaN and "
                        + $"{nonFinite.Infinite:N0} infinite of {entry.Elements:N0} values."
                );
            bytes += entry.End - entry.Begin;
        }
        lock (_gate)
        {
            _checked[layer] = true;
            _held[buffer] = layer;
            _bytesRead += bytes;
            _readTicks += System.Diagnostics.Stopwatch.GetElapsedTime(started).Ticks;
        }
    }

    /// <summary>
    /// Makes the parameter a view of its mapped file with every page mapped in; null where it cannot be one (another
    /// dtype, an unaligned offset, a kernel without MADV_POPULATE_READ: mapping is then off for good).
    /// </summary>
    private NonFiniteCount? Map(
        int buffer,
        int index,
        SafetensorsFile file,
        SafetensorsEntry entry,
        bool scan,
        string key,
        int layer
    )
    {
        if (!_mapFiles)
            return null;
        var parameter = _parameters[buffer][index].Parameter;
        // A file cut short past a page boundary faults in Populate; cut inside the tensor's last page it would read
        // zeros there, so its length is checked first.
        var end = file.DataStart + entry.End;
        var length = new FileInfo(file.Path).Length;
        if (length < end)
            throw CutShort(file, key, layer, length, end);
        if (!_maps.TryGetValue(file.Path, out var mapped))
            _maps[file.Path] = mapped = new MappedFile(file.Path, length);
        using var view = mapped.TryView(file, entry, parameter.dtype);
        if (view is null)
            return null;
        var address = MappedFile.Address(view);
        var bytes = entry.End - entry.Begin;
        switch (MappedFile.Populate(address, bytes, entry.DType, scan, out var found))
        {
            case Hosting.ProcessMemory.Population.Unsupported:
                _mapFiles = false;
                return null;
            case Hosting.ProcessMemory.Population.Faulted:
                throw CutShort(file, key, layer, new FileInfo(file.Path).Length, end);
        }
        parameter.set_(view);
        _viewed[buffer][index] = true;
        if (_releasePages)
            _pages[buffer].Add((address, bytes));
        return found;
    }

    private static CheckpointException CutShort(SafetensorsFile file, string key, int layer, long length, long end) =>
        new(
            $"{Path.GetFileName(file.Path)}: reading {key} for layer {layer} failed: the file is "
                + $"{length:N0} bytes now, "
                + $"and the tensor ends at byte {end:N0} (was it cut short or rewritten in place?)"
        );

    /// <summary>Reads the parameter's bytes into memory of its own (given back if it was a view).</summary>
    private NonFiniteCount ReadInto(int buffer, int index, SafetensorsFile file, SafetensorsEntry entry, bool scan)
    {
        var parameter = _parameters[buffer][index].Parameter;
        if (_viewed[buffer][index])
        {
            using var own = torch.empty(parameter.shape, parameter.dtype);
            parameter.set_(own);
            _viewed[buffer][index] = false;
        }
        return file.ReadInto(entry, parameter, Stream(file.Path), scan: scan);
    }

    /// <summary>The buffer's mapped pages leave the process (the page cache keeps them while it has room).</summary>
    private void DropPages(int buffer)
    {
        foreach (var (address, bytes) in _pages[buffer])
            Hosting.ProcessMemory.DropPages(address, bytes);
        _pages[buffer].Clear();
    }

    /// <summary>One open stream per file, used by the loader thread only.</summary>
    private FileStream Stream(string path)
    {
        if (!_files.TryGetValue(path, out var stream))
            _files[path] = stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return stream;
    }

    public void Dispose()
    {
        Settle();
        for (var b = 0; b < Buffers; b++)
        {
            DropPages(b);
            _buffers[b].Dispose();
        }
        foreach (var mapped in _maps.Values)
            mapped.Dispose();
        _maps.Clear();
        foreach (var stream in _files.Values)
            stream.Dispose();
        _files.Clear();
    }
}
