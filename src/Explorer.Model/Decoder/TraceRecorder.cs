using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>
/// Collects what a traced forward keeps, computing summaries in torch as the layers run. Kept tensors are
/// detached from the forward's dispose scopes and owned by the trace.
/// </summary>
internal sealed class TraceRecorder : IDisposable
{
    private readonly Decoder _decoder;
    private readonly TraceOptions _options;
    private readonly long _length;
    private readonly int[] _lensPositions;

    // Residual states are kept per layer and summarised in a few batched ops at the end: one op per statistic
    // instead of one per statistic and layer.
    private readonly List<Tensor> _states = []; // (T, d) per layer boundary, L + 1 of them
    private readonly List<Tensor> _attentionOut = []; // (T, d) per layer
    private readonly List<Tensor> _ffnOut = []; // (T, d) per layer
    private readonly List<Tensor> _probabilities = []; // (H, T, T) fp16 per layer
    private readonly List<Tensor> _lensStates = []; // (P, d) per layer
    private readonly int[]? _deferredPositions;
    private readonly List<Tensor> _deferredStates = []; // (P', d) per layer, for a lens completed later

    public TraceRecorder(Decoder decoder, TraceOptions options, long length)
    {
        _decoder = decoder;
        _options = options;
        _length = length;
        if (options.TopK < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "TopK must be at least 1.");
        // No lens in the forward: no positions (a trace's LensPositions are the ones its LogitLens covers).
        var positions = !options.LogitLens ? [] : options.LensPositions ?? Enumerable.Range(0, (int)length).ToArray();
        foreach (var p in positions)
            if (p < 0 || p >= length)
                throw new ArgumentOutOfRangeException(
                    nameof(options),
                    p,
                    $"Logit-lens position {p} is outside the sequence [0, {length})."
                );
        _lensPositions = positions.ToArray();
        if (options.DeferredLensPositions is { } deferred)
        {
            foreach (var p in deferred)
                if (p < 0 || p >= length)
                    throw new ArgumentOutOfRangeException(
                        nameof(options),
                        p,
                        $"Deferred lens position {p} is outside the sequence [0, {length})."
                    );
            _deferredPositions = deferred.ToArray();
        }
    }

    public bool KeepsAttention => _options.Attention;

    private static Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();

    public void OnEmbedding(Tensor x)
    {
        if (_options.Residual)
            _states.Add(Keep(x[0]));
    }

    public void OnLayer(int layer, Tensor input, LayerStep step)
    {
        using var scope = NewDisposeScope();
        if (_options.Residual)
        {
            _states.Add(Keep(step.Output[0]));
            _attentionOut.Add(Keep(step.AttentionOut[0]));
            _ffnOut.Add(Keep(step.FfnOut[0]));
        }
        if (_options.Attention && step.Probabilities is { } probs)
        {
            // Kept in fp16; head summaries are computed from the kept maps at the end, many layers per op.
            _probabilities.Add(Keep(probs[0].to(ScalarType.Float16)));
        }
        if (_options.LogitLens)
        {
            var index = torch.tensor(_lensPositions.Select(i => (long)i).ToArray(), device: step.Output.device);
            _lensStates.Add(Keep(step.Output[0].index_select(0, index)));
        }
        if (_deferredPositions is not null)
        {
            var index = torch.tensor(_deferredPositions.Select(i => (long)i).ToArray(), device: step.Output.device);
            _deferredStates.Add(Keep(step.Output[0].index_select(0, index)));
        }
    }

    /// <summary>
    /// Per layer and head: normalised entropy, sink mass and previous-token score, averaged over queries 1…T−1,
    /// for maps p of shape (C, H, T, T) of layers <paramref name="firstLayer"/>… Returns (3, C, H). Entropy is
    /// normalised by the log of the keys a query can see: i + 1, or the window in a sliding-window layer.
    /// </summary>
    private Tensor HeadSummaries(Tensor p, int firstLayer)
    {
        long c = p.shape[0],
            h = p.shape[1],
            t = p.shape[2];
        if (t < 2)
            return torch.stack([
                torch.zeros(c, h, device: p.device),
                torch.ones(c, h, device: p.device),
                torch.zeros(c, h, device: p.device),
            ]);
        var spec = _decoder.Spec;
        var rows = p.narrow(2, 1, t - 1); // queries 1…T−1
        var rowEntropy = -rows.xlogy(rows).sum(-1); // (C, H, T−1)
        var visible = Enumerable
            .Range(0, (int)c)
            .SelectMany(l =>
                Enumerable
                    .Range(2, (int)t - 1)
                    .Select(keys =>
                        MathF.Log(spec.SlidesAt(firstLayer + l) ? Math.Min(keys, spec.SlidingWindow!.Value) : keys)
                    )
            )
            .ToArray();
        var maxEntropy = torch.tensor(visible, device: p.device).view(c, 1, t - 1); // log(keys seen), ≥ log 1 = 0
        var entropy = (rowEntropy / maxEntropy.clamp_min(HeldScalars.NormFloor)).mean([2]); // (C, H)
        var sink = rows.select(3, 0).mean([2]); // mean_i A[i, 0]
        var previous = torch.diagonal(p, -1, 2, 3).mean([2]); // mean_i A[i, i−1]
        return torch.stack([entropy, sink, previous]);
    }

    public DecoderTrace Finish(Tensor tokens, Tensor logits)
    {
        using var scope = NewDisposeScope();
        var spec = _decoder.Spec;
        float[,]? residualNorm = null,
            influence = null,
            update = null,
            attention = null,
            ffn = null;
        if (_options.Residual)
        {
            var states = torch.stack(_states).to(ScalarType.Float32); // (L + 1, T, d)
            var norms = states.norm(2, false, 2); // (L + 1, T)
            var hIn = states.narrow(0, 0, _states.Count - 1);
            var hOut = states.narrow(0, 1, _states.Count - 1);
            residualNorm = Copy2D(norms);
            // 1 − cos
            influence = Copy2D(
                nn.functional.cosine_similarity(hIn, hOut, 2, 1e-8).neg_().add_(HeldScalars.One, HeldScalars.One)
            );
            update = Copy2D(
                (hOut - hIn).norm(2, false, 2) / norms.narrow(0, 0, _states.Count - 1).clamp_min(HeldScalars.NormFloor)
            );
            attention = Copy2D(torch.stack(_attentionOut).to(ScalarType.Float32).norm(2, false, 2));
            ffn = Copy2D(torch.stack(_ffnOut).to(ScalarType.Float32).norm(2, false, 2));
        }
        float[,]? entropy = null,
            sink = null,
            previous = null;
        if (_options.Attention && _probabilities.Count > 0)
        {
            // Layers in chunks of at most ~8M map entries, converted back to fp32 a chunk at a time.
            var perLayer = _probabilities[0].numel();
            var chunk = (int)Math.Max(1, (8L << 20) / perLayer);
            var parts = new List<Tensor>();
            for (var start = 0; start < _probabilities.Count; start += chunk)
            {
                var maps = torch.stack(_probabilities.Skip(start).Take(chunk).ToArray()).to(ScalarType.Float32);
                parts.Add(HeadSummaries(maps, start));
            }
            var heads = torch.cat(parts, 1); // (3, L, H)
            entropy = Copy2D(heads[0]);
            sink = Copy2D(heads[1]);
            previous = Copy2D(heads[2]);
        }
        LogitLensEntry[,]? lens = null;
        var lensTime = TimeSpan.Zero;
        if (_options.LogitLens)
        {
            var lensWatch = System.Diagnostics.Stopwatch.StartNew();
            var index = torch.tensor(_lensPositions.Select(i => (long)i).ToArray(), device: logits.device);
            lens = LogitLensComputation.Compute(
                _decoder,
                torch.stack(_lensStates),
                logits[0].index_select(0, index),
                _options.TopK
            );
            lensTime = lensWatch.Elapsed;
        }
        var deferred = _deferredPositions is null ? null : Keep(torch.stack(_deferredStates)); // (L, P', d)

        var trace = new DecoderTrace(
            spec,
            tokens[0].to(CPU).data<long>().Select(v => (int)v).ToArray(),
            Keep(logits[0].to(ScalarType.Float32)),
            residualNorm,
            influence,
            update,
            attention,
            ffn,
            _probabilities.ToArray(),
            entropy,
            sink,
            previous,
            _lensPositions,
            lens,
            _deferredPositions,
            deferred,
            _options.TopK,
            lensTime
        );
        DisposeAll(_states, _attentionOut, _ffnOut, _lensStates, _deferredStates);
        _probabilities.Clear(); // now owned by the trace
        return trace;
    }

    private static float[,] Copy2D(Tensor t)
    {
        var cpu = t.to(ScalarType.Float32).to(CPU).contiguous();
        long rows = cpu.shape[0],
            cols = cpu.shape[1];
        var flat = cpu.data<float>().ToArray();
        var result = new float[rows, cols];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(float));
        return result;
    }

    private static void DisposeAll(params List<Tensor>[] lists)
    {
        foreach (var list in lists)
        {
            foreach (var t in list)
                t.Dispose();
            list.Clear();
        }
    }

    public void Dispose()
    {
        DisposeAll(_states, _attentionOut, _ffnOut, _probabilities, _lensStates, _deferredStates);
    }
}
