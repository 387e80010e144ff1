using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>
/// A checkpoint's decoder layers read from its safetensors files as a forward reaches them, into two reusable layer
/// buffers: while one layer computes, the next is read into the other. Only two layers are ever in memory (the
/// files' pages stay in the kernel's page cache, which it can drop), so a model far larger than the machine runs, one
/// layer at a time. Reads happen on one loader thread, in layer order; a file that fails part-way fails the forward
/// with the file and tensor named.
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
    private readonly bool[] _checked; // layers whose values were scanned for NaN and Inf on a first, complete read
    private readonly object _gate = new();
    private Task _tail = Task.CompletedTask;
    private long _bytesRead;
    private long _readTicks;
    private long _waitTicks;

    internal LayerStream(ModelSpec spec, IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors, ScalarType dtype)
    {
        _spec = spec;
        _tensors = tensors;
        _checked = new bool[spec.Layers];
        for (var b = 0; b < Buffers; b++)
        {
            _buffers[b] = new DecoderLayer($"buffer{b}", spec, CPU, dtype);
            _buffers[b].eval();
            _parameters[b] = _buffers[b].named_parameters().Select(p => (p.name, p.parameter)).ToArray();
            _loads[b] = Task.CompletedTask;
            _held[b] = -1;
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
        get { lock (_gate) return (_bytesRead, TimeSpan.FromTicks(_readTicks), TimeSpan.FromTicks(_waitTicks)); }
    }

    /// <summary>The checkpoint name of a layer's parameter: <c>model.layers.N.</c> + its name inside the layer.</summary>
    public static string CheckpointName(int layer, string parameter) => $"model.layers.{layer}.{parameter}";

    /// <summary>Starts a forward: the first two layers are read (after whatever a cancelled forward left pending).</summary>
    public void BeginForward()
    {
        for (var layer = 0; layer < Math.Min(Buffers, _spec.Layers); layer++)
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
            throw e.InnerExceptions[0] is CheckpointException c ? c : new CheckpointException(e.InnerExceptions[0].Message);
        }
        lock (_gate)
        {
            _waitTicks += System.Diagnostics.Stopwatch.GetElapsedTime(waiting).Ticks;
            if (_held[buffer] != layer)
                throw new InvalidOperationException($"Layer {layer} was asked for, but its buffer holds layer {_held[buffer]}.");
        }
        return _buffers[buffer];
    }

    /// <summary>Layer <paramref name="layer"/> is done: its buffer takes the layer two further on.</summary>
    public void Release(int layer)
    {
        if (layer + Buffers < _spec.Layers)
            Schedule(layer + Buffers);
    }

    /// <summary>Waits for reads still under way (a cancelled or failed forward leaves some): the buffers are then idle.</summary>
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
            _tail = _loads[buffer] = _tail.ContinueWith(_ => Read(layer, buffer), CancellationToken.None,
                TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    private void Read(int layer, int buffer)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        long bytes = 0;
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in _parameters[buffer])
        {
            var key = CheckpointName(layer, name);
            if (!_tensors.TryGetValue(key, out var found))
                throw new CheckpointException($"{key} is not in the checkpoint.");
            var (file, entry) = found;
            NonFiniteCount nonFinite;
            try
            {
                // Every value is checked the first time its layer is read; later reads copy at the files' speed.
                nonFinite = file.ReadInto(entry, parameter, Stream(file.Path), scan: !_checked[layer]);
            }
            catch (Exception e) when (e is IOException or EndOfStreamException or UnauthorizedAccessException)
            {
                throw new CheckpointException($"{Path.GetFileName(file.Path)}: reading {key} for layer {layer} failed: {e.Message}");
            }
            if (nonFinite.Total > 0)
                throw new CheckpointException($"{key} in {Path.GetFileName(file.Path)}: {nonFinite.NaN:N0} NaN and {nonFinite.Infinite:N0} infinite of {entry.Elements:N0} values.");
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
        foreach (var buffer in _buffers)
            buffer.Dispose();
        foreach (var stream in _files.Values)
            stream.Dispose();
        _files.Clear();
    }
}
