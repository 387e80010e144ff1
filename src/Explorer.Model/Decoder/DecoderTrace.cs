using System.Runtime.InteropServices;
using Explorer.Core.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>Logit lens at one layer and position: the top tokens, the entropy, and KL(final ‖ this layer).</summary>
public sealed record LogitLensEntry(int[] TopTokens, float[] TopProbabilities, float Entropy, float KlToFinal);

/// <summary>
/// What a traced forward kept for one sequence. Small summaries are plain arrays; attention maps stay as
/// tensors (fp16, one (heads, T, T) per layer) and are copied out one head at a time. Dispose to free them.
/// Arrays indexed [layer, position] or [layer, head]; residual norms [boundary, position] with boundary 0 the
/// embedding.
/// </summary>
public sealed class DecoderTrace : IDisposable
{
    private readonly Tensor _logits; // (T, V) fp32
    private readonly Tensor[] _probabilities; // per layer (H, T, T) fp16
    private readonly int _topK;
    private readonly object _lensGate = new();
    private Tensor? _deferredStates; // (L, P', d) in the model's dtype until the lens is completed
    private LogitLensEntry[,]? _fullLens;
    private LogitLensEntry[,]? _lastLens;
    private TimeSpan _lastLensTime;

    internal DecoderTrace(
        ModelSpec spec,
        int[] tokens,
        Tensor logits,
        float[,]? residualNorm,
        float[,]? blockInfluence,
        float[,]? relativeUpdate,
        float[,]? attentionNorm,
        float[,]? ffnNorm,
        Tensor[] probabilities,
        float[,]? headEntropy,
        float[,]? sinkMass,
        float[,]? previousToken,
        int[] lensPositions,
        LogitLensEntry[,]? logitLens,
        int[]? deferredLensPositions = null,
        Tensor? deferredStates = null,
        int topK = 5,
        TimeSpan lensTime = default
    )
    {
        LensTime = lensTime;
        DeferredLensPositions = deferredLensPositions ?? [];
        _deferredStates = deferredStates;
        _topK = topK;
        Spec = spec;
        Tokens = tokens;
        _logits = logits;
        ResidualNorm = residualNorm;
        BlockInfluence = blockInfluence;
        RelativeUpdate = relativeUpdate;
        AttentionNorm = attentionNorm;
        FfnNorm = ffnNorm;
        _probabilities = probabilities;
        HeadEntropy = headEntropy;
        SinkMass = sinkMass;
        PreviousTokenScore = previousToken;
        LensPositions = lensPositions;
        LogitLens = logitLens;
    }

    public ModelSpec Spec { get; }
    public int[] Tokens { get; }
    public int Length => Tokens.Length;
    public int Layers => Spec.Layers;

    /// <summary>‖h‖ per position after each layer; row 0 is the embedding output.</summary>
    public float[,]? ResidualNorm { get; }

    /// <summary>1 − cos(h_in, h_out) per layer and position (ShortGPT's block influence).</summary>
    public float[,]? BlockInfluence { get; }

    /// <summary>‖h_out − h_in‖ / ‖h_in‖ per layer and position.</summary>
    public float[,]? RelativeUpdate { get; }

    /// <summary>‖attention output‖ added to the residual stream, per layer and position.</summary>
    public float[,]? AttentionNorm { get; }

    /// <summary>‖FFN output‖ added to the residual stream, per layer and position.</summary>
    public float[,]? FfnNorm { get; }

    /// <summary>Attention entropy normalised by log(i+1), mean over queries, per layer and head.</summary>
    public float[,]? HeadEntropy { get; }

    /// <summary>Mean attention to the first token, per layer and head.</summary>
    public float[,]? SinkMass { get; }

    /// <summary>Mean attention to the previous token, per layer and head.</summary>
    public float[,]? PreviousTokenScore { get; }

    public int[] LensPositions { get; }

    /// <summary>How long the forward took to read its <see cref="LensPositions"/> through the lens.</summary>
    public TimeSpan LensTime { get; }

    /// <summary>[layer, index into <see cref="LensPositions"/>].</summary>
    public LogitLensEntry[,]? LogitLens { get; }

    public bool HasAttention => _probabilities.Length > 0;

    /// <summary>The residual after layer <paramref name="layer"/> (0-based) at the <paramref name="index"/>-th deferred
    /// lens position, fp32.</summary>
    internal float[] DeferredResidual(int layer, int index)
    {
        lock (_lensGate)
        {
            var states = _deferredStates ?? throw NotKept("deferred lens states");
            using var row = states[layer, index].to(ScalarType.Float32).contiguous();
            return row.data<float>().ToArray();
        }
    }

    /// <summary>Positions whose lens can be completed after the forward (<see cref="CompleteLens"/>); empty if
    /// none.</summary>
    public int[] DeferredLensPositions { get; }

    /// <summary>The lens at the last of <see cref="DeferredLensPositions"/> once read (<see cref="ReadLastLens"/>),
    /// [layer, 0]; null before. What the views draw first, and what <see cref="LensCost"/> prices the rest
    /// from.</summary>
    public LogitLensEntry[,]? LastLens
    {
        get
        {
            lock (_lensGate)
                return _lastLens;
        }
    }

    /// <summary>How long reading <see cref="LastLens"/> took (zero before).</summary>
    public TimeSpan LastLensTime
    {
        get
        {
            lock (_lensGate)
                return _lastLensTime;
        }
    }

    /// <summary>The lens at <see cref="DeferredLensPositions"/> once completed, [layer, index into them]; null
    /// before.</summary>
    public LogitLensEntry[,]? FullLens
    {
        get
        {
            lock (_lensGate)
                return _fullLens;
        }
    }

    /// <summary>Bytes held for the deferred lens (freed when it is completed).</summary>
    public long DeferredLensBytes
    {
        get
        {
            lock (_lensGate)
                return _deferredStates is null ? 0 : _deferredStates.numel() * _deferredStates.element_size();
        }
    }

    /// <summary>
    /// Reads the lens at the last deferred position from the states the forward kept, timed, and keeps it as
    /// <see cref="LastLens"/>: one position through the LM head, a fraction of the forward, so the views draw the
    /// depth charts before it and the lens right after. Run on the thread that runs the model. Idempotent.
    /// </summary>
    public LogitLensEntry[,] ReadLastLens(Decoder decoder, CancellationToken cancellation = default)
    {
        Tensor states;
        lock (_lensGate)
        {
            if (_lastLens is not null)
                return _lastLens;
            if (_fullLens is not null)
                return _lastLens = LastColumn(_fullLens);
            if (DeferredLensPositions.Length == 0)
                throw NotKept("deferred lens states");
            states = _deferredStates ?? throw NotKept("deferred lens states");
        }
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var last = DeferredLensPositions.Length - 1;
        var lens = Compute(decoder, states, last, 1, cancellation);
        lock (_lensGate)
        {
            if (_lastLens is null)
            {
                _lastLens = lens;
                _lastLensTime = watch.Elapsed;
            }
            return _lastLens;
        }
    }

    /// <summary>
    /// Computes the lens at every deferred position from the states the forward kept (no second forward), keeps it as
    /// <see cref="FullLens"/> and frees the states. The last position, when <see cref="ReadLastLens"/> read it, is not
    /// computed again. Run on the thread that runs the model. Idempotent.
    /// </summary>
    public LogitLensEntry[,] CompleteLens(Decoder decoder, CancellationToken cancellation = default)
    {
        Tensor states;
        LogitLensEntry[,]? last;
        lock (_lensGate)
        {
            if (_fullLens is not null)
                return _fullLens;
            states = _deferredStates ?? throw NotKept("deferred lens states");
            last = _lastLens;
        }
        // Computed outside the lock, so a view reading FullLens meanwhile is not held up; the caller holds the trace
        // (a lease), so the states are not freed under it.
        var positions = DeferredLensPositions.Length;
        LogitLensEntry[,] full;
        if (last is null)
            full = Compute(decoder, states, 0, positions, cancellation);
        else
        {
            var rest = Compute(decoder, states, 0, positions - 1, cancellation);
            full = new LogitLensEntry[Layers, positions];
            for (var l = 0; l < Layers; l++)
            {
                for (var j = 0; j < positions - 1; j++)
                    full[l, j] = rest[l, j];
                full[l, positions - 1] = last[l, 0];
            }
        }
        lock (_lensGate)
        {
            if (_fullLens is null)
            {
                _fullLens = full;
                _lastLens ??= LastColumn(full);
                _deferredStates?.Dispose();
                _deferredStates = null;
            }
            return _fullLens;
        }
    }

    /// <summary>The lens at <paramref name="count"/> deferred positions from the <paramref name="from"/>-th, [layer,
    /// position].</summary>
    private LogitLensEntry[,] Compute(
        Decoder decoder,
        Tensor states,
        int from,
        int count,
        CancellationToken cancellation
    )
    {
        if (count == 0)
            return new LogitLensEntry[Layers, 0];
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var index = torch.tensor(
            DeferredLensPositions.Skip(from).Take(count).Select(i => (long)i).ToArray(),
            device: _logits.device
        );
        return LogitLensComputation.Compute(
            decoder,
            states.narrow(1, from, count),
            _logits.index_select(0, index),
            _topK,
            cancellation
        );
    }

    private LogitLensEntry[,] LastColumn(LogitLensEntry[,] lens)
    {
        var last = new LogitLensEntry[Layers, 1];
        for (var l = 0; l < Layers; l++)
            last[l, 0] = lens[l, lens.GetLength(1) - 1];
        return last;
    }

    /// <summary>The KV head that query head <paramref name="head"/> reads.</summary>
    public int KvGroup(int head) => head / Spec.QueriesPerKeyValueHead;

    /// <summary>Mean over positions 1…T−1 (position 0 often carries an attention sink) of ‖h‖ at a boundary.</summary>
    public double MeanResidualNorm(int boundary) =>
        MeanOverPositions(ResidualNorm ?? throw NotKept("residual"), boundary, skipFirst: true);

    /// <summary>‖h_l‖ / ‖h_{l−1}‖ of the position means, for layer l = 1…L.</summary>
    public double GrowthRatio(int layer) => MeanResidualNorm(layer + 1) / MeanResidualNorm(layer);

    public static double MeanOverPositions(float[,] values, int row, bool skipFirst = false)
    {
        int n = values.GetLength(1),
            start = skipFirst && n > 1 ? 1 : 0;
        double sum = 0;
        for (var i = start; i < n; i++)
            sum += values[row, i];
        return sum / (n - start);
    }

    /// <summary>Logits of the last position, every vocabulary entry.</summary>
    public float[] LastLogits() => Copy(() => _logits[Length - 1]);

    /// <summary>Logits of one position, every vocabulary entry.</summary>
    public float[] LogitsAt(int position)
    {
        CheckPosition(position);
        return Copy(() => _logits[position]);
    }

    /// <summary>One head's attention map, row-major (query, key), T × T floats: the only copy a view needs.</summary>
    public float[] HeadMap(int layer, int head)
    {
        if (!HasAttention)
            throw NotKept("attention");
        if (layer < 0 || layer >= _probabilities.Length)
            throw new ArgumentOutOfRangeException(
                nameof(layer),
                layer,
                $"Layer must be in [0, {_probabilities.Length})."
            );
        if (head < 0 || head >= Spec.AttentionHeads)
            throw new ArgumentOutOfRangeException(nameof(head), head, $"Head must be in [0, {Spec.AttentionHeads}).");
        return Copy(() => _probabilities[layer][head]);
    }

    /// <summary>Bytes the trace holds in attention maps.</summary>
    public long AttentionBytes => _probabilities.Sum(p => p.numel() * p.element_size());

    private int CheckPosition(int position) =>
        position >= 0 && position < Length
            ? position
            : throw new ArgumentOutOfRangeException(nameof(position), position, $"Position must be in [0, {Length}).");

    private static InvalidOperationException NotKept(string what) =>
        new($"This trace did not keep {what}; ask for it in TraceOptions.");

    /// <summary>
    /// Copies out the tensor <paramref name="select"/> makes (a row, a head), inside a dispose scope that holds it and
    /// every temporary until the copy is done. Views call this from their own threads: a temporary held by nothing
    /// could be finalized during the native call that reads it, freeing it under the read (a crash once the allocator
    /// had handed the freed pages back).
    /// </summary>
    private static float[] Copy(Func<Tensor> select)
    {
        using var scope = NewDisposeScope();
        var cpu = select().to(ScalarType.Float32).to(CPU).contiguous();
        return MemoryMarshal.Cast<byte, float>(cpu.bytes).ToArray();
    }

    public void Dispose()
    {
        lock (_lensGate)
        {
            _deferredStates?.Dispose();
            _deferredStates = null;
        }
        _logits.Dispose();
        foreach (var p in _probabilities)
            p.Dispose();
    }
}
