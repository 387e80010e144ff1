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
    private readonly List<Tensor> _residualNorms = [];  // (T) per layer boundary, L + 1 of them
    private readonly List<Tensor> _layerStats = [];     // (4, T) per layer: influence, update, attention norm, ffn norm
    private readonly List<Tensor> _probabilities = [];  // (H, T, T) fp16 per layer
    private readonly List<Tensor> _headStats = [];      // (3, H) per layer: entropy, sink, previous token
    private readonly List<Tensor> _lensStates = [];     // (P, d) per layer

    public TraceRecorder(Decoder decoder, TraceOptions options, long length)
    {
        _decoder = decoder;
        _options = options;
        _length = length;
        if (options.TopK < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.TopK, "TopK must be at least 1.");
        var positions = options.LensPositions ?? Enumerable.Range(0, (int)length).ToArray();
        foreach (var p in positions)
            if (p < 0 || p >= length)
                throw new ArgumentOutOfRangeException(nameof(options), p, $"Logit-lens position {p} is outside the sequence [0, {length}).");
        _lensPositions = positions.ToArray();
    }

    public bool KeepsAttention => _options.Attention;

    private static Tensor Keep(Tensor t) => t.detach().DetachFromDisposeScope();

    public void OnEmbedding(Tensor x)
    {
        if (_options.Residual)
            _residualNorms.Add(Keep(x[0].to(ScalarType.Float32).norm(1, false, 2)));
    }

    public void OnLayer(int layer, Tensor input, LayerStep step)
    {
        using var scope = NewDisposeScope();
        if (_options.Residual)
        {
            var hIn = input[0].to(ScalarType.Float32);            // (T, d)
            var hOut = step.Output[0].to(ScalarType.Float32);      // (T, d)
            var inNorm = hIn.norm(1, false, 2);
            var outNorm = hOut.norm(1, false, 2);
            var influence = 1 - nn.functional.cosine_similarity(hIn, hOut, 1, 1e-8);      // (T)
            var update = (hOut - hIn).norm(1, false, 2) / inNorm.clamp_min(1e-12);       // (T)
            var attention = step.AttentionOut[0].to(ScalarType.Float32).norm(1, false, 2);
            var ffn = step.FfnOut[0].to(ScalarType.Float32).norm(1, false, 2);
            _residualNorms.Add(Keep(outNorm));
            _layerStats.Add(Keep(torch.stack([influence, update, attention, ffn])));
        }
        if (_options.Attention && step.Probabilities is { } probs)
        {
            var p = probs[0];                                                               // (H, T, T) fp32
            _headStats.Add(Keep(HeadSummaries(p)));
            _probabilities.Add(Keep(p.to(ScalarType.Float16)));
        }
        if (_options.LogitLens)
        {
            var index = torch.tensor(_lensPositions.Select(i => (long)i).ToArray(), device: step.Output.device);
            _lensStates.Add(Keep(step.Output[0].index_select(0, index)));
        }
    }

    /// <summary>Per head: normalised entropy, sink mass and previous-token score, averaged over queries 1…T−1.</summary>
    private static Tensor HeadSummaries(Tensor p)
    {
        long h = p.shape[0], t = p.shape[1];
        if (t < 2)
            return torch.stack([torch.zeros(h, device: p.device), torch.ones(h, device: p.device), torch.zeros(h, device: p.device)]);
        var rowEntropy = -(p * p.clamp_min(1e-30).log()).sum(-1);                               // (H, T)
        var maxEntropy = torch.arange(2, t + 1, ScalarType.Float32, p.device).log();            // log(i+1), i = 1…T−1
        var entropy = (rowEntropy.narrow(1, 1, t - 1) / maxEntropy).mean([1]);                   // (H)
        var sink = p.narrow(1, 1, t - 1).select(2, 0).mean([1]);                                 // mean_i A[i, 0]
        var previous = torch.diagonal(p, -1, 1, 2).mean([1]);                                     // mean_i A[i, i−1]
        return torch.stack([entropy, sink, previous]);
    }

    public DecoderTrace Finish(Tensor tokens, Tensor logits)
    {
        using var scope = NewDisposeScope();
        var spec = _decoder.Spec;
        float[,]? residualNorm = null, influence = null, update = null, attention = null, ffn = null;
        if (_options.Residual)
        {
            residualNorm = Copy2D(torch.stack(_residualNorms));                   // (L + 1, T)
            var stats = torch.stack(_layerStats);                                 // (L, 4, T)
            influence = Copy2D(stats.select(1, 0));
            update = Copy2D(stats.select(1, 1));
            attention = Copy2D(stats.select(1, 2));
            ffn = Copy2D(stats.select(1, 3));
        }
        float[,]? entropy = null, sink = null, previous = null;
        if (_options.Attention && _headStats.Count > 0)
        {
            var heads = torch.stack(_headStats);                                  // (L, 3, H)
            entropy = Copy2D(heads.select(1, 0));
            sink = Copy2D(heads.select(1, 1));
            previous = Copy2D(heads.select(1, 2));
        }
        LogitLensEntry[,]? lens = null;
        if (_options.LogitLens)
            lens = LogitLens(logits);

        var trace = new DecoderTrace(
            spec,
            tokens[0].to(CPU).data<long>().Select(v => (int)v).ToArray(),
            Keep(logits[0].to(ScalarType.Float32)),
            residualNorm, influence, update, attention, ffn,
            _probabilities.ToArray(), entropy, sink, previous,
            _lensPositions, lens);
        DisposeAll(_residualNorms, _layerStats, _headStats, _lensStates);
        _probabilities.Clear(); // now owned by the trace
        return trace;
    }

    private LogitLensEntry[,] LogitLens(Tensor logits)
    {
        int layers = _lensStates.Count, positions = _lensPositions.Length, k = Math.Min(_options.TopK, _decoder.Spec.VocabularySize);
        var result = new LogitLensEntry[layers, positions];
        var index = torch.tensor(_lensPositions.Select(i => (long)i).ToArray(), device: logits.device);
        var finalLog = logits[0].index_select(0, index).to(ScalarType.Float32).log_softmax(-1); // (P, V)
        var finalP = finalLog.exp();
        for (var l = 0; l < layers; l++)
        {
            using var scope = NewDisposeScope();
            var log = _decoder.Head(_lensStates[l]).to(ScalarType.Float32).log_softmax(-1);     // (P, V)
            var p = log.exp();
            var entropy = -(p * log).sum(-1);                                                     // (P)
            var kl = (finalP * (finalLog - log)).sum(-1);                                         // KL(p_L ‖ p_l)
            var (values, ids) = p.topk(k, 1, true, true);
            var ent = entropy.to(CPU).data<float>().ToArray();
            var kls = kl.to(CPU).data<float>().ToArray();
            var vals = values.to(CPU).data<float>().ToArray();
            var idx = ids.to(CPU).data<long>().ToArray();
            for (var j = 0; j < positions; j++)
                result[l, j] = new LogitLensEntry(
                    idx.Skip(j * k).Take(k).Select(v => (int)v).ToArray(),
                    vals.Skip(j * k).Take(k).ToArray(),
                    ent[j],
                    Math.Max(0, kls[j]));
        }
        return result;
    }

    private static float[,] Copy2D(Tensor t)
    {
        var cpu = t.to(ScalarType.Float32).to(CPU).contiguous();
        long rows = cpu.shape[0], cols = cpu.shape[1];
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
        DisposeAll(_residualNorms, _layerStats, _probabilities, _headStats, _lensStates);
    }
}
