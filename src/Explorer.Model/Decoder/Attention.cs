using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>Causal self-attention with RoPE and grouped-query attention (KV head g serves query heads g·n_rep … g·n_rep + n_rep − 1).</summary>
public sealed class Attention : nn.Module
{
    private readonly Projection _q, _k, _v, _o;
    private readonly long _heads, _kvHeads, _headDim;

    public Attention(string name, long hidden, long heads, long kvHeads, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = hidden / heads;
        _q = new Projection("q_proj", hidden, heads * _headDim, device, dtype);
        _k = new Projection("k_proj", hidden, kvHeads * _headDim, device, dtype);
        _v = new Projection("v_proj", hidden, kvHeads * _headDim, device, dtype);
        _o = new Projection("o_proj", heads * _headDim, hidden, device, dtype);
        register_module("q_proj", _q);
        register_module("k_proj", _k);
        register_module("v_proj", _v);
        register_module("o_proj", _o);
    }

    /// <summary>
    /// Attends x (B, T, d). Given an additive <paramref name="causalMask"/> (T, T) the softmax is computed explicitly
    /// and its probabilities (B, heads, T, T) are returned; without one the fused kernel runs and none are returned.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? causalMask, out Tensor? probabilities)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = _q.forward(x).view(b, t, _heads, _headDim).transpose(1, 2);   // (B, H, T, hd)
        var k = _k.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // (B, KV, T, hd)
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2); // (B, KV, T, hd)
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        var nRep = _heads / _kvHeads;

        Tensor context;
        if (causalMask is not null)
        {
            // Scores and softmax in fp32 whatever the weights' dtype. GQA without copying K and V: the n_rep query
            // heads of a group are stacked along T and meet their one KV head in a single matmul.
            if (q.dtype != ScalarType.Float32)
            {
                q = q.to(ScalarType.Float32);
                k = k.to(ScalarType.Float32);
            }
            var grouped = q.reshape(b, _kvHeads, nRep * t, _headDim);                      // (B, KV, n_rep·T, hd)
            var scores = grouped.matmul(k.transpose(-2, -1)).view(b, _heads, t, t);        // (B, H, T, T)
            var probs = scores.mul_(1.0 / Math.Sqrt(_headDim)).add_(causalMask).softmax(-1);
            var weights = (probs.dtype == v.dtype ? probs : probs.to(v.dtype)).view(b, _kvHeads, nRep * t, t);
            context = weights.matmul(v).view(b, _heads, t, _headDim);                      // (B, H, T, hd)
            probabilities = probs.MoveToOuterDisposeScope();
        }
        else
        {
            // TorchSharp 0.107's SDPA has no GQA flag: repeat each KV head for the query heads of its group.
            context = nn.functional.scaled_dot_product_attention(q, RepeatKv(k, nRep), RepeatKv(v, nRep), is_casual: true);
            probabilities = null;
        }
        var merged = context.transpose(1, 2).contiguous().view(b, t, _heads * _headDim); // (B, T, H·hd)
        return _o.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary>The additive causal mask (T, T): 0 on and below the diagonal, −∞ above.</summary>
    public static Tensor CausalMask(long length, Device device) =>
        torch.full(length, length, float.NegativeInfinity, device: device).triu_(1);

    /// <summary>(B, KV, T, hd) → (B, KV·n_rep, T, hd), each KV head repeated for the query heads of its group.</summary>
    public static Tensor RepeatKv(Tensor x, long nRep) =>
        nRep == 1 ? x.alias() : x.repeat_interleave(nRep, dim: 1);
}
