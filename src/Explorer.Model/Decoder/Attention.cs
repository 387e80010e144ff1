using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>Causal self-attention with RoPE and grouped-query attention (KV head g serves query heads g·n_rep … g·n_rep + n_rep − 1).</summary>
public sealed class Attention : nn.Module
{
    private readonly Linear _q, _k, _v, _o;
    private readonly long _heads, _kvHeads, _headDim;

    public Attention(string name, long hidden, long heads, long kvHeads, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = hidden / heads;
        _q = nn.Linear(hidden, heads * _headDim, hasBias: false, device: device, dtype: dtype);
        _k = nn.Linear(hidden, kvHeads * _headDim, hasBias: false, device: device, dtype: dtype);
        _v = nn.Linear(hidden, kvHeads * _headDim, hasBias: false, device: device, dtype: dtype);
        _o = nn.Linear(heads * _headDim, hidden, hasBias: false, device: device, dtype: dtype);
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
    }

    public Linear OutputProjection => _o;

    /// <summary>
    /// Attends x (B, T, d). With <paramref name="keepProbabilities"/> the softmax is computed explicitly and its
    /// probabilities (B, heads, T, T) are returned; otherwise the fused kernel runs and none are returned.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, bool keepProbabilities, out Tensor? probabilities)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = _q.forward(x).view(b, t, _heads, _headDim).transpose(1, 2);   // (B, H, T, hd)
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // (B, KV, T, hd)
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // (B, KV, T, hd)
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        k = RepeatKv(k, _heads / _kvHeads);                                     // (B, H, T, hd)
        v = RepeatKv(v, _heads / _kvHeads);

        Tensor context;
        if (keepProbabilities)
        {
            var scores = q.to(ScalarType.Float32).matmul(k.to(ScalarType.Float32).transpose(-2, -1)) / Math.Sqrt(_headDim);
            var future = torch.ones(t, t, ScalarType.Bool, x.device).triu(1);
            var probs = scores.masked_fill(future, float.NegativeInfinity).softmax(-1); // (B, H, T, T), fp32
            context = probs.to(v.dtype).matmul(v);
            probabilities = probs.MoveToOuterDisposeScope();
        }
        else
        {
            // TorchSharp 0.107's SDPA has no GQA flag: KV heads were repeated above.
            context = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true);
            probabilities = null;
        }
        var merged = context.transpose(1, 2).contiguous().view(b, t, _heads * _headDim); // (B, T, H·hd)
        return _o.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary>(B, KV, T, hd) → (B, KV·n_rep, T, hd), each KV head repeated for the query heads of its group.</summary>
    public static Tensor RepeatKv(Tensor x, long nRep) =>
        nRep == 1 ? x.alias() : x.repeat_interleave(nRep, dim: 1);
}
