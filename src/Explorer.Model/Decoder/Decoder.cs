using Explorer.Core.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

// The decoder, top to bottom as a reader meets it in llama's or nanoGPT's model.py: the small modules (RMSNorm,
// rotary embeddings, the bias-free projection, the embedding table), attention, the feed-forward block, one decoder
// layer, then the whole model and its forward. Shapes are commented at every reshape: B batch, T tokens, d hidden,
// H query heads, KV key/value heads, hd head dimension.
namespace Explorer.Model.Decoder;

/// <summary>
/// y = x · rsqrt(mean(x²) + eps) · w, the mean in fp32 as every family's RMSNorm computes it; where the weight is
/// applied and where the result rounds to the activations' dtype follow the family (<see cref="NormScale"/>).
/// </summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Scalar _eps; // held by the module for every call (HeldScalars)
    private readonly NormScale _scale;

    public RmsNorm(
        string name,
        long dim,
        double eps,
        Device device,
        ScalarType dtype = ScalarType.Float32,
        NormScale scale = NormScale.Weight
    )
        : base(name)
    {
        _eps = eps.ToScalar();
        _scale = scale;
        register_parameter("weight", new Parameter(torch.ones(dim, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>Whether the weight is an offset from one (Gemma): a fresh norm's weight is then zero, not
    /// one.</summary>
    public bool WeightIsOffset => _scale == NormScale.OnePlusWeight;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * torch.rsqrt((x32 * x32).mean([-1], keepdim: true).add(_eps, HeldScalars.One));
        var y = _scale switch
        {
            NormScale.WeightInFloat32 => (Weight.to(ScalarType.Float32) * normed).to(x.dtype),
            NormScale.OnePlusWeight => (
                normed * Weight.to(ScalarType.Float32).add(HeldScalars.One, HeldScalars.One)
            ).to(x.dtype),
            _ => Weight * normed.to(x.dtype),
        };
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Rotary position embeddings in Hugging Face's "halves" form: inv_freq_i = θ^(−2i/head_dim), and
/// rotate_half pairs element i with element i + head_dim/2.
/// </summary>
public static class Rotary
{
    /// <summary>cos and sin tables for positions [0, length) of a model: each (length, head_dim), fp32, with its rope
    /// scaling.</summary>
    public static (Tensor Cos, Tensor Sin) Tables(ModelSpec spec, long length, Device device) =>
        Tables(InverseFrequencies(spec, length), length, device);

    /// <summary>
    /// inv_freq_i = θ^(−2i/head_dim), rescaled as transformers' modeling_rope_utils does for the spec's rope_scaling:
    /// linear divides every frequency by the factor; dynamic NTK raises θ to θ·(factor·T/max − (factor −
    /// 1))^(hd/(hd−2)) once the sequence T is longer than max_position_embeddings (and leaves it otherwise); llama3
    /// divides the frequencies whose wavelength exceeds original_max/low_freq_factor by the factor, keeps those shorter
    /// than original_max/high_freq_factor, and blends between.
    /// </summary>
    public static double[] InverseFrequencies(ModelSpec spec, long length)
    {
        var headDim = spec.HeadDim;
        var theta = spec.RopeTheta;
        var scaling = spec.RopeScaling;
        if (scaling is { Kind: RopeScalingKind.Dynamic } && length > spec.ContextLength)
            theta *= Math.Pow(
                scaling.Factor * length / spec.ContextLength - (scaling.Factor - 1),
                headDim / (headDim - 2.0)
            );
        var inverse = Enumerable.Range(0, headDim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headDim)).ToArray();
        if (scaling is { Kind: RopeScalingKind.Linear })
            for (var i = 0; i < inverse.Length; i++)
                inverse[i] /= scaling.Factor;
        else if (scaling is { Kind: RopeScalingKind.Llama3 })
        {
            var lowWavelength = scaling.OriginalContext / scaling.LowFrequencyFactor;
            var highWavelength = scaling.OriginalContext / scaling.HighFrequencyFactor;
            for (var i = 0; i < inverse.Length; i++)
            {
                var wavelength = 2 * Math.PI / inverse[i];
                if (wavelength > lowWavelength)
                    inverse[i] /= scaling.Factor;
                else if (wavelength >= highWavelength)
                {
                    var smooth =
                        (scaling.OriginalContext / wavelength - scaling.LowFrequencyFactor)
                        / (scaling.HighFrequencyFactor - scaling.LowFrequencyFactor);
                    inverse[i] = (1 - smooth) * inverse[i] / scaling.Factor + smooth * inverse[i];
                }
            }
        }
        return inverse;
    }

    /// <summary>cos and sin tables for positions [0, length) with plain RoPE (no scaling): each (length, head_dim),
    /// fp32.</summary>
    public static (Tensor Cos, Tensor Sin) Tables(long length, long headDim, double theta, Device device) =>
        Tables(
            Enumerable.Range(0, (int)(headDim / 2)).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headDim)).ToArray(),
            length,
            device
        );

    private static (Tensor Cos, Tensor Sin) Tables(double[] inverse, long length, Device device)
    {
        using var scope = NewDisposeScope();
        // The frequencies and positions in double precision here, so no number travels as a TorchSharp Scalar.
        var invFreq = torch.tensor(inverse, ScalarType.Float64, device); // (hd/2)
        var positions = torch.tensor(
            Enumerable.Range(0, (int)length).Select(p => (double)p).ToArray(),
            ScalarType.Float64,
            device
        ); // (T)
        var freqs = torch.outer(positions, invFreq); // (T, hd/2)
        var angles = torch.cat([freqs, freqs], -1); // (T, hd)
        return (
            angles.cos().to(ScalarType.Float32).MoveToOuterDisposeScope(),
            angles.sin().to(ScalarType.Float32).MoveToOuterDisposeScope()
        );
    }

    /// <summary>x · cos + rotate_half(x) · sin for x of shape (B, heads, T, head_dim).</summary>
    /// <param name="inFloat32">Rotate in fp32 and round the result to x's dtype (OLMo 2, whose cos and sin stay fp32);
    /// otherwise cos and sin are rounded to x's dtype first, as LLaMA and the others do. The same in fp32.</param>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin, bool inFloat32 = false)
    {
        using var scope = NewDisposeScope();
        if (inFloat32 && x.dtype != ScalarType.Float32)
            return Apply(x.to(ScalarType.Float32), cos, sin).to(x.dtype).MoveToOuterDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = torch.cat([-x2, x1], -1);
        return (x * cos.to(x.dtype)).Plus(rotated * sin.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A linear map, weight stored [out, in] as Hugging Face checkpoints store it, with a bias where the family has one
/// (Qwen2's q, k, v). Unlike TorchSharp's <c>nn.Linear</c> it does not initialise its weight: every decoder weight is
/// either filled from a seed (<see cref="Decoder.Create"/>) or read from a checkpoint, and a 7B model's Kaiming init
/// alone took over a minute.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    public Projection(
        string name,
        long inFeatures,
        long outFeatures,
        Device device,
        ScalarType dtype,
        bool bias = false
    )
        : base(name)
    {
        register_parameter("weight", new Parameter(torch.empty(outFeatures, inFeatures, dtype, device)));
        if (bias)
            register_parameter("bias", new Parameter(torch.empty(outFeatures, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;
    public Parameter? Bias => get_parameter("bias");

    /// <summary>x (…, in) → (…, out).</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, Weight, Bias);
}

/// <summary>
/// The token embedding table (vocab, d). A plain parameter so that it can be built on the meta device. Gemma multiplies
/// the rows by √d rounded to the activations' dtype, as transformers does (in bf16 √3072 = 55.43 becomes 55.5).
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly bool _scaled;
    private readonly double _normalizer;

    public TokenEmbedding(
        string name,
        long vocabulary,
        long hidden,
        Device device,
        ScalarType dtype = ScalarType.Float32,
        bool scaled = false
    )
        : base(name)
    {
        _scaled = scaled;
        _normalizer = Math.Sqrt(hidden);
        register_parameter("weight", new Parameter(torch.empty(vocabulary, hidden, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>tokens (B, T) int64 → (B, T, d).</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var rows = Weight
            .index_select(0, tokens.reshape(-1))
            .reshape(tokens.shape[0], tokens.shape[1], Weight.shape[1]);
        if (_scaled)
            // a 0-d tensor in the weights' dtype, as transformers makes it
            rows = rows * torch.tensor(_normalizer, Weight.dtype, Weight.device);
        return rows.MoveToOuterDisposeScope();
    }
}

/// <summary>How attention is computed: the fused kernel, or explicitly, keeping the probabilities a trace
/// records.</summary>
public enum AttentionPath
{
    /// <summary>PyTorch's scaled-dot-product attention: fastest, no probabilities.</summary>
    Fused,

    /// <summary>Scores, causal mask and softmax in fp32, the probabilities (B, heads, T, T) returned.</summary>
    KeepProbabilities,
}

/// <summary>
/// Causal self-attention with RoPE and grouped-query attention (KV head g serves query heads g·n_rep … g·n_rep + n_rep
/// − 1), as the spec's family builds it: q, k, v, o projections (Phi-3: one qkv_proj, q then k then v), biases where
/// the family has them, an RMSNorm of q and k before RoPE (Qwen3 per head, OLMo 2 across heads), scores scaled by
/// 1/√head_dim, and an optional window (a mask the decoder passes).
/// </summary>
public sealed class Attention : nn.Module
{
    private readonly Projection? _q,
        _k,
        _v,
        _qkv;
    private readonly Projection _o;
    private readonly RmsNorm? _qNorm,
        _kNorm;
    private readonly QkNorm _qkNorm;
    private readonly bool _rotateInFloat32;
    private readonly long _heads,
        _kvHeads,
        _headDim;
    private readonly Scalar _scale; // 1/√hd, held by the module for every call (HeldScalars)

    public Attention(string name, ModelSpec spec, Device device, ScalarType dtype = ScalarType.Float32)
        : base(name)
    {
        _heads = spec.AttentionHeads;
        _kvHeads = spec.KeyValueHeads;
        _headDim = spec.HeadDim;
        _scale = (1.0 / Math.Sqrt(_headDim)).ToScalar();
        long d = spec.HiddenSize,
            q = _heads * _headDim,
            kv = _kvHeads * _headDim;
        var qkvBias = spec.AttentionBias != AttentionBias.None;
        if (spec.FusedProjections)
        {
            _qkv = new Projection("qkv_proj", d, q + 2 * kv, device, dtype, qkvBias);
            register_module("qkv_proj", _qkv);
        }
        else
        {
            _q = new Projection("q_proj", d, q, device, dtype, qkvBias);
            _k = new Projection("k_proj", d, kv, device, dtype, qkvBias);
            _v = new Projection("v_proj", d, kv, device, dtype, qkvBias);
            register_module("q_proj", _q);
            register_module("k_proj", _k);
            register_module("v_proj", _v);
        }
        _o = new Projection("o_proj", q, d, device, dtype, spec.AttentionBias == AttentionBias.All);
        register_module("o_proj", _o);
        _qkNorm = spec.QkNorm;
        _rotateInFloat32 = spec.Family == ModelFamily.Olmo2; // Olmo2RotaryEmbedding returns fp32 cos and sin
        if (spec.QkNorm != QkNorm.None)
        {
            var perHead = spec.QkNorm == QkNorm.PerHead;
            _qNorm = new RmsNorm("q_norm", perHead ? _headDim : q, spec.NormEpsilon, device, dtype, spec.NormScale);
            _kNorm = new RmsNorm("k_norm", perHead ? _headDim : kv, spec.NormEpsilon, device, dtype, spec.NormScale);
            register_module("q_norm", _qNorm);
            register_module("k_norm", _kNorm);
        }
    }

    /// <summary>
    /// Attends x (B, T, d) by <paramref name="path"/>: with <see cref="AttentionPath.KeepProbabilities"/> the softmax
    /// is computed explicitly and its probabilities (B, heads, T, T) are returned; fused, none are. <paramref
    /// name="mask"/>: the additive (T, T) mask (causal, or causal within a window); null: the causal mask, built here
    /// when needed.
    /// </summary>
    public Tensor Forward(
        Tensor x,
        Tensor cos,
        Tensor sin,
        AttentionPath path,
        out Tensor? probabilities,
        Tensor? mask = null
    ) => Forward(x, cos, sin, path, out probabilities, mask, null);

    /// <param name="edits">Heads an intervention ablates before o_proj.</param>
    internal Tensor Forward(
        Tensor x,
        Tensor cos,
        Tensor sin,
        AttentionPath path,
        out Tensor? probabilities,
        Tensor? mask,
        LayerEdits? edits
    )
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0],
            t = x.shape[1];
        Tensor qFlat,
            kFlat,
            vFlat; // (B, T, H·hd), (B, T, KV·hd) ×2
        if (_qkv is not null)
        {
            var qkv = _qkv.forward(x);
            qFlat = qkv.narrow(-1, 0, _heads * _headDim);
            kFlat = qkv.narrow(-1, _heads * _headDim, _kvHeads * _headDim);
            vFlat = qkv.narrow(-1, (_heads + _kvHeads) * _headDim, _kvHeads * _headDim);
        }
        else
        {
            qFlat = _q!.forward(x);
            kFlat = _k!.forward(x);
            vFlat = _v!.forward(x);
        }
        if (_qkNorm == QkNorm.AcrossHeads)
        {
            qFlat = _qNorm!.forward(qFlat);
            kFlat = _kNorm!.forward(kFlat);
        }
        var q = qFlat.reshape(b, t, _heads, _headDim); // (B, T, H, hd)
        var k = kFlat.reshape(b, t, _kvHeads, _headDim); // (B, T, KV, hd)
        if (_qkNorm == QkNorm.PerHead)
        {
            q = _qNorm!.forward(q);
            k = _kNorm!.forward(k);
        }
        q = q.transpose(1, 2); // (B, H, T, hd)
        k = k.transpose(1, 2); // (B, KV, T, hd)
        var v = vFlat.reshape(b, t, _kvHeads, _headDim).transpose(1, 2); // (B, KV, T, hd)
        q = Rotary.Apply(q, cos, sin, _rotateInFloat32);
        k = Rotary.Apply(k, cos, sin, _rotateInFloat32);
        var nRep = _heads / _kvHeads;

        Tensor context;
        if (path == AttentionPath.KeepProbabilities)
        {
            mask ??= CausalMask(t, x.device);
            // Scores and softmax in fp32 whatever the weights' dtype. GQA without copying K and V: the n_rep query
            // heads of a group are stacked along T and meet their one KV head in a single matmul.
            if (q.dtype != ScalarType.Float32)
            {
                q = q.to(ScalarType.Float32);
                k = k.to(ScalarType.Float32);
            }
            var grouped = q.reshape(b, _kvHeads, nRep * t, _headDim); // (B, KV, n_rep·T, hd)
            var scores = grouped.matmul(k.transpose(-2, -1)).view(b, _heads, t, t); // (B, H, T, T)
            var probs = scores.mul_(_scale).add_(mask.to(ScalarType.Float32), HeldScalars.One).softmax(-1);
            var weights = (probs.dtype == v.dtype ? probs : probs.to(v.dtype)).view(b, _kvHeads, nRep * t, t);
            context = weights.matmul(v).view(b, _heads, t, _headDim); // (B, H, T, hd)
            probabilities = probs.MoveToOuterDisposeScope();
        }
        else
        {
            // TorchSharp 0.107's SDPA has no GQA flag: repeat each KV head for the query heads of its group.
            context = mask is null
                ? nn.functional.scaled_dot_product_attention(q, RepeatKv(k, nRep), RepeatKv(v, nRep), is_casual: true)
                : nn.functional.scaled_dot_product_attention(q, RepeatKv(k, nRep), RepeatKv(v, nRep), mask.to(q.dtype));
            probabilities = null;
        }
        edits?.ObserveContext?.Invoke(context);
        if (edits?.EditsHeads == true)
            context = edits.EditHeads(context); // ablated or patched heads, before o_proj
        if (edits?.ObserveHeads is { } observe)
            observe(HeadOutputsAtLast(context), _o.Bias?.detach().to(ScalarType.Float32).cpu());
        var merged = context.transpose(1, 2).contiguous().view(b, t, _heads * _headDim); // (B, T, H·hd)
        return _o.forward(merged).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Each query head's share of o_proj's output at the last position, (H, d) fp32 on the CPU: head h's context
    /// (B = 1) times o_proj's columns h·hd … h·hd + hd − 1. The shares and o_proj's bias sum to the branch output
    /// there.
    /// </summary>
    private Tensor HeadOutputsAtLast(Tensor context)
    {
        using var scope = NewDisposeScope();
        var last = context[0, .., ^1].to(ScalarType.Float32); // (H, hd)
        var weight = _o.Weight.detach().to(ScalarType.Float32).view(-1, _heads, _headDim); // (d, H, hd)
        return torch.einsum("hk,dhk->hd", last, weight).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>The additive causal mask (T, T): 0 on and below the diagonal, −∞ above.</summary>
    public static Tensor CausalMask(long length, Device device) =>
        torch.full(length, length, HeldScalars.NegativeInfinity, device: device).triu_(1);

    /// <summary>
    /// The additive causal mask within a window of <paramref name="window"/> keys (T, T): query i sees keys j with
    /// i − window &lt; j ≤ i (transformers' sliding_window_overlay and the causal mask), −∞ elsewhere.
    /// </summary>
    public static Tensor SlidingWindowMask(long length, long window, Device device)
    {
        using var scope = NewDisposeScope();
        var above = torch.full(length, length, HeldScalars.NegativeInfinity, device: device).triu_(1);
        var outside = torch.full(length, length, HeldScalars.NegativeInfinity, device: device).tril_(-window);
        return above.add_(outside, HeldScalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>(B, KV, T, hd) → (B, KV·n_rep, T, hd), each KV head repeated for the query heads of its
    /// group.</summary>
    public static Tensor RepeatKv(Tensor x, long nRep) => nRep == 1 ? x.alias() : x.repeat_interleave(nRep, dim: 1);
}

/// <summary>
/// The gated feed-forward block down(act(gate(x)) · up(x)) (SwiGLU with SiLU, GeGLU with GELU; Phi-3 stores gate and up
/// as one gate_up_proj, gate first), or the ungated down(gelu(up(x))) variant; biases where mlp_bias asks.
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Projection? _gate,
        _gateUp,
        _up;
    private readonly Projection _down;
    private readonly Activation _activation;
    private readonly long _intermediate;

    public FeedForward(string name, ModelSpec spec, Device device, ScalarType dtype = ScalarType.Float32)
        : base(name)
    {
        long d = spec.HiddenSize,
            ffn = spec.IntermediateSize;
        _intermediate = ffn;
        _activation = spec.FfnKind == FfnKind.Gelu ? Activation.Gelu : spec.Activation;
        if (spec.FfnKind == FfnKind.SwiGlu && spec.FusedProjections)
        {
            _gateUp = new Projection("gate_up_proj", d, 2 * ffn, device, dtype, spec.MlpBias);
            register_module("gate_up_proj", _gateUp);
        }
        else
        {
            if (spec.FfnKind == FfnKind.SwiGlu)
            {
                _gate = new Projection("gate_proj", d, ffn, device, dtype, spec.MlpBias);
                register_module("gate_proj", _gate);
            }
            _up = new Projection("up_proj", d, ffn, device, dtype, spec.MlpBias);
            register_module("up_proj", _up);
        }
        _down = new Projection("down_proj", ffn, d, device, dtype, spec.MlpBias);
        register_module("down_proj", _down);
    }

    private Tensor Act(Tensor x) =>
        _activation switch
        {
            Activation.Gelu => nn.functional.gelu(x),
            Activation.GeluTanh => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
            _ => nn.functional.silu(x),
        };

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor inner;
        if (_gateUp is not null)
        {
            var both = _gateUp.forward(x);
            inner = Act(both.narrow(-1, 0, _intermediate)) * both.narrow(-1, _intermediate, _intermediate);
        }
        else
            inner = _gate is null ? Act(_up!.forward(x)) : Act(_gate.forward(x)) * _up!.forward(x);
        return _down.forward(inner).MoveToOuterDisposeScope();
    }
}

/// <summary>What one layer did, for the trace: its output and the two contributions it added.</summary>
public readonly record struct LayerStep(Tensor Output, Tensor AttentionOut, Tensor FfnOut, Tensor? Probabilities);

/// <summary>
/// One decoder block: pre-norm x + attn(norm(x)), then h + ffn(norm(h)); OLMo 2's x + norm(attn(x)), then
/// h + norm(ffn(h)); or the experimental post-norm variant.
/// </summary>
public sealed class DecoderLayer : nn.Module
{
    private readonly RmsNorm? _inputNorm;
    private readonly RmsNorm _postAttentionNorm;
    private readonly RmsNorm? _postFfnNorm;
    private readonly Attention _attention;
    private readonly FeedForward _ffn;
    private readonly NormPlacement _placement;

    public DecoderLayer(string name, ModelSpec spec, Device device, ScalarType dtype = ScalarType.Float32)
        : base(name)
    {
        _placement = spec.NormPlacement;
        if (_placement != NormPlacement.BranchOutput)
        {
            _inputNorm = new RmsNorm(
                "input_layernorm",
                spec.HiddenSize,
                spec.NormEpsilon,
                device,
                dtype,
                spec.NormScale
            );
            register_module("input_layernorm", _inputNorm);
        }
        _attention = new Attention("self_attn", spec, device, dtype);
        _postAttentionNorm = new RmsNorm(
            "post_attention_layernorm",
            spec.HiddenSize,
            spec.NormEpsilon,
            device,
            dtype,
            spec.NormScale
        );
        _ffn = new FeedForward("mlp", spec, device, dtype);
        register_module("self_attn", _attention);
        register_module("post_attention_layernorm", _postAttentionNorm);
        register_module("mlp", _ffn);
        if (_placement == NormPlacement.BranchOutput)
        {
            _postFfnNorm = new RmsNorm(
                "post_feedforward_layernorm",
                spec.HiddenSize,
                spec.NormEpsilon,
                device,
                dtype,
                spec.NormScale
            );
            register_module("post_feedforward_layernorm", _postFfnNorm);
        }
    }

    /// <param name="mask">The layer's additive attention mask; null: causal (the fused kernel's own when
    /// fused).</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask = null) =>
        Step(x, cos, sin, AttentionPath.Fused, mask).Output;

    /// <summary>
    /// Runs the block and returns the pieces a trace records; the attention probabilities too when
    /// <paramref name="path"/> keeps them (<paramref name="mask"/>: the layer's additive mask, shared by the layers of
    /// a forward that attend alike; null: causal). All tensors belong to the caller's scope.
    /// </summary>
    public LayerStep Step(Tensor x, Tensor cos, Tensor sin, AttentionPath path, Tensor? mask = null) =>
        Step(x, cos, sin, path, mask, null);

    /// <param name="edits">What an intervention changes in this layer: heads before o_proj, a branch's output (the
    /// contribution it adds), or the whole layer (skipped: output = input, contributions zero; its attention is still
    /// computed so the maps show what it would attend).</param>
    internal LayerStep Step(Tensor x, Tensor cos, Tensor sin, AttentionPath path, Tensor? mask, LayerEdits? edits)
    {
        Tensor attention,
            ffn,
            output;
        Tensor? probs;
        switch (_placement)
        {
            case NormPlacement.Pre:
            {
                attention = LayerEdits.Ablate(
                    _attention.Forward(_inputNorm!.forward(x), cos, sin, path, out probs, mask, edits),
                    edits?.AttentionOut
                );
                var h = x.Plus(attention);
                ffn = LayerEdits.Ablate(_ffn.forward(_postAttentionNorm.forward(h)), edits?.MlpOut);
                output = h.Plus(ffn);
                break;
            }
            case NormPlacement.BranchOutput:
            {
                attention = LayerEdits.Ablate(
                    _postAttentionNorm.forward(_attention.Forward(x, cos, sin, path, out probs, mask, edits)),
                    edits?.AttentionOut
                );
                var h = x.Plus(attention);
                ffn = LayerEdits.Ablate(_postFfnNorm!.forward(_ffn.forward(h)), edits?.MlpOut);
                output = h.Plus(ffn);
                break;
            }
            default:
            {
                attention = LayerEdits.Ablate(
                    _attention.Forward(x, cos, sin, path, out probs, mask, edits),
                    edits?.AttentionOut
                );
                var h = _inputNorm!.forward(x.Plus(attention));
                ffn = LayerEdits.Ablate(_ffn.forward(h), edits?.MlpOut);
                output = _postAttentionNorm.forward(h.Plus(ffn));
                break;
            }
        }
        if (edits?.Skip == true)
            return new LayerStep(x.alias(), torch.zeros_like(attention), torch.zeros_like(ffn), probs);
        return new LayerStep(output, attention, ffn, probs);
    }
}

/// <summary>
/// The decoder: token embedding, N blocks of attention with RoPE and GQA and a gated feed-forward block, a final
/// RMSNorm and an LM head (untied or tied to the embedding). DeepSeek LLM's design by default (pre-norm RMSNorm,
/// SwiGLU, no biases); every other family is the same code under its <see cref="ModelSpec"/>'s data: norm scale and
/// placement, q/k norm, biases, head_dim, rope scaling, activation, embedding scale, sliding window, fused projections.
/// Parameter names follow the family's Hugging Face layout (<c>model.layers.N.self_attn.q_proj.weight</c>, …).
/// </summary>
public sealed class Decoder : nn.Module
{
    private readonly Body _model;
    private readonly Projection? _lmHead;

    public ModelSpec Spec { get; }
    public DecoderOptions Options { get; }

    private sealed class Body : nn.Module
    {
        public readonly TokenEmbedding Embed;
        public readonly ModuleList<DecoderLayer> Layers;
        public readonly RmsNorm Norm;

        /// <param name="residentLayers">False for a streamed decoder: its layers are read as a forward reaches
        /// them.</param>
        public Body(ModelSpec spec, Device device, ScalarType dtype, bool residentLayers = true)
            : base("model")
        {
            Embed = new TokenEmbedding(
                "embed_tokens",
                spec.VocabularySize,
                spec.HiddenSize,
                device,
                dtype,
                spec.ScaleEmbedding
            );
            Layers = new ModuleList<DecoderLayer>();
            for (var i = 0; i < (residentLayers ? spec.Layers : 0); i++)
                Layers.Add(new DecoderLayer(i.ToString(), spec, device, dtype));
            Norm = new RmsNorm("norm", spec.HiddenSize, spec.NormEpsilon, device, dtype, spec.NormScale);
            register_module("embed_tokens", Embed);
            register_module("layers", Layers);
            register_module("norm", Norm);
        }
    }

    private ILayerSource? _stream;

    private Decoder(ModelSpec spec, DecoderOptions options, Device device, ScalarType dtype, bool residentLayers = true)
        : base("decoder")
    {
        Spec = spec;
        Options = options;
        _model = new Body(spec, device, dtype, residentLayers);
        register_module("model", _model);
        if (!spec.TiedEmbeddings)
        {
            _lmHead = new Projection("lm_head", spec.HiddenSize, spec.VocabularySize, device, dtype);
            register_module("lm_head", _lmHead);
        }
    }

    /// <summary>Builds a decoder for a validated spec, initialised deterministically from the seed.</summary>
    public static Decoder Create(ModelSpec spec, DecoderOptions? options = null)
    {
        SpecValidator.EnsureValid(spec);
        options ??= new DecoderOptions();
        if (options.DType is not (ScalarType.Float32 or ScalarType.BFloat16))
            throw new ArgumentException(
                $"DType {options.DType} is not supported; use Float32 or BFloat16.",
                nameof(options)
            );
        var meta = options.Device.type == DeviceType.META;
        if (meta || !options.Initialise)
        {
            // Shapes only, or weights a checkpoint will fill: built directly in the target dtype, never twice.
            var empty = new Decoder(spec, options, meta ? options.Device : CPU, options.DType);
            empty.eval();
            return empty;
        }
        // Initialise in fp32 on the CPU, where a seeded generator gives the same weights on every machine.
        var decoder = new Decoder(spec, options, CPU, ScalarType.Float32);
        {
            decoder.Initialise(options.Seed, options.InitStd);
            decoder.to(options.Device);
            if (options.DType != ScalarType.Float32)
                decoder.to(options.DType);
        }
        decoder.eval();
        return decoder;
    }

    /// <summary>
    /// A decoder whose embedding, final norm and LM head are its own (for a checkpoint to fill) and whose layers come
    /// from <paramref name="source"/> as each forward reaches them; the decoder owns the source.
    /// </summary>
    internal static Decoder Streamed(ModelSpec spec, ScalarType dtype, Func<ILayerSource> source)
    {
        SpecValidator.EnsureValid(spec);
        var decoder = new Decoder(
            spec,
            new DecoderOptions
            {
                Initialise = false,
                DType = dtype,
                Device = CPU,
            },
            CPU,
            dtype,
            residentLayers: false
        );
        try
        {
            decoder._stream = source();
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
        decoder.eval();
        return decoder;
    }

    /// <summary>Whether the layers are streamed from the checkpoint's files rather than held in memory.</summary>
    public bool IsStreamed => _stream is not null;

    /// <summary>Where a streamed decoder's layers come from; null when they are resident.</summary>
    public ILayerSource? LayerSource => _stream;

    private void Initialise(ulong seed, double std)
    {
        using var noGrad = torch.no_grad();
        var generator = new Generator(seed, CPU);
        // Scalars held by this frame for every call that reads them (HeldScalars).
        using var hiddenStd = std.ToScalar();
        using var outputStd = (std / Math.Sqrt(2.0 * Spec.Layers)).ToScalar();
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                // Gemma stores w − 1
                parameter.fill_(Spec.NormScale == NormScale.OnePlusWeight ? HeldScalars.Zero : HeldScalars.One);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else
            {
                var scaled =
                    name.EndsWith("o_proj.weight", StringComparison.Ordinal)
                    || name.EndsWith("down_proj.weight", StringComparison.Ordinal);
                using var values = torch.randn(parameter.shape, generator: generator);
                parameter.copy_(values.mul_(scaled ? outputStd : hiddenStd));
            }
        }
    }

    /// <summary>The resident layers; a streamed decoder has none in memory, so what needs them (training, split runs)
    /// refuses it.</summary>
    public IReadOnlyList<DecoderLayer> Layers =>
        _stream is null
            ? _model.Layers.ToArray()
            : throw new InvalidOperationException(
                $"{Spec.Name} is streamed from its files layer by layer: it runs traced forwards, not "
                    + "training or split runs. Load it resident for those."
            );
    internal TokenEmbedding Embedding => _model.Embed;

    /// <summary>tokens (B, T) → embeddings (B, T, d): the first unit of a pipeline split.</summary>
    public Tensor Embed(Tensor tokens)
    {
        using var onDevice = tokens.to(Device);
        return _model.Embed.forward(onDevice);
    }

    internal RmsNorm FinalNorm => _model.Norm;

    /// <summary>The LM head's rows (vocab, d): its own weight, or the embedding's when tied.</summary>
    internal Tensor Unembedding => _lmHead is null ? _model.Embed.Weight : _lmHead.Weight;
    public Device Device => _model.Embed.Weight.device;
    public ScalarType DType => _model.Embed.Weight.dtype;

    /// <summary>Number of parameters (a tied head counted once).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    /// <summary>Final RMSNorm and LM head on residual states (…, d) → logits (…, vocab).</summary>
    public Tensor Head(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var normed = _model.Norm.forward(hidden);
        var logits = _lmHead is null ? nn.functional.linear(normed, _model.Embed.Weight) : _lmHead.forward(normed);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>tokens (B, T) int64 → logits (B, T, vocab), fused attention, autograd as the caller has it.</summary>
    public Tensor Forward(Tensor tokens) => Run(tokens, null);

    /// <summary>Logits without autograd, for inference.</summary>
    public Tensor Logits(Tensor tokens)
    {
        using var noGrad = torch.no_grad();
        return Run(tokens, null);
    }

    /// <summary>Logits without autograd, with <paramref name="interventions"/> applied (checked first, naming what does
    /// not fit).</summary>
    public Tensor Logits(Tensor tokens, Interventions interventions, CancellationToken cancellation = default)
    {
        interventions.Check(Spec, tokens.shape[^1]);
        using var noGrad = torch.no_grad();
        return Run(tokens, null, cancellation, edits: interventions);
    }

    /// <summary>
    /// The residual stream of one sequence (1, T) at every boundary: (L + 1, T, d) fp32 on the CPU, row 0 the
    /// embedding, row l the state after layer l. The source of activation patching.
    /// </summary>
    public Tensor ResidualStates(Tensor tokens, CancellationToken cancellation = default)
    {
        if (tokens.dim() != 2 || tokens.shape[0] != 1)
            throw new ArgumentException(
                $"Residual states are taken of one sequence, shape (1, T); got ({string.Join(", ", tokens.shape)}).",
                nameof(tokens)
            );
        using var noGrad = torch.no_grad();
        var states = new List<Tensor>();
        try
        {
            using (Run(tokens, null, cancellation, onResidual: (_, x) =>
                {
                    states.Add(x[0].to(ScalarType.Float32).to(CPU).detach().DetachFromDisposeScope());
                    return x;
                })) { }
            return torch.stack(states);
        }
        finally
        {
            foreach (var state in states)
                state.Dispose();
        }
    }

    /// <summary>One sequence (1, T) with the trace the options ask for; cancellation is checked between
    /// layers.</summary>
    public DecoderTrace Trace(
        Tensor tokens,
        TraceOptions options,
        CancellationToken cancellation = default,
        Action<int>? onLayer = null,
        Interventions? interventions = null
    )
    {
        if (tokens.dim() != 2 || tokens.shape[0] != 1)
            throw new ArgumentException(
                $"Tracing takes one sequence, shape (1, T); got ({string.Join(", ", tokens.shape)}).",
                nameof(tokens)
            );
        using var noGrad = torch.no_grad();
        var recorder = new TraceRecorder(this, options, tokens.shape[1]);
        try
        {
            interventions?.Check(Spec, tokens.shape[1]);
            var logits = Run(tokens, recorder, cancellation, onLayer, interventions);
            return recorder.Finish(tokens, logits);
        }
        catch
        {
            recorder.Dispose();
            throw;
        }
    }

    /// <param name="onLayer">Told the number of layers done after each one (a streamed 95-layer forward takes
    /// minutes).</param>
    /// <param name="edits">Interventions to apply (checked by the caller).</param>
    /// <param name="onResidual">Given each boundary's residual (0: the embedding; l: after layer l), as patched, and
    /// returns the state the forward goes on with (the same, or one a gradient can be taken against).</param>
    internal Tensor Run(
        Tensor tokens,
        TraceRecorder? recorder,
        CancellationToken cancellation = default,
        Action<int>? onLayer = null,
        Interventions? edits = null,
        Func<int, Tensor, Tensor>? onResidual = null
    )
    {
        if (tokens.dtype != ScalarType.Int64)
            throw new ArgumentException($"Token ids must be int64; got {tokens.dtype}.", nameof(tokens));
        using var scope = NewDisposeScope();
        long t = tokens.shape[1];
        var x = _model.Embed.forward(tokens.to(Device)); // (B, T, d)
        if (edits is not null)
            x = edits.Patch(0, x);
        if (onResidual is not null)
            x = onResidual(0, x);
        var (cos, sin) = Rotary.Tables(Spec, t, Device);
        recorder?.OnEmbedding(x);
        var path = recorder?.KeepsAttention == true ? AttentionPath.KeepProbabilities : AttentionPath.Fused;
        // One mask for every layer that attends alike: causal (null where the fused kernel's own will do), and the
        // window.
        var causal = path == AttentionPath.KeepProbabilities ? Attention.CausalMask(t, Device) : null;
        var window = WindowMask(t);
        _stream?.BeginForward();
        try
        {
            for (var l = 0; l < Spec.Layers; l++)
            {
                cancellation.ThrowIfCancellationRequested();
                var layer = _stream is null ? _model.Layers[l] : _stream.Acquire(l, cancellation);
                var mask = Spec.SlidesAt(l) && window is not null ? window : causal;
                var layerEdits = edits?.ForLayer(l);
                if (recorder is null && layerEdits is null)
                    x = layer.Forward(x, cos, sin, mask);
                else
                {
                    var step = layer.Step(x, cos, sin, path, mask, layerEdits);
                    if (edits is not null)
                        // the trace records the patched state
                        step = step with { Output = edits.Patch(l + 1, step.Output) };
                    recorder?.OnLayer(l, x, step);
                    x = step.Output;
                }
                if (recorder is null && layerEdits is null && edits is not null)
                    x = edits.Patch(l + 1, x);
                if (onResidual is not null)
                    x = onResidual(l + 1, x);
                // CPU ops are done when they return: the buffer can take the next layer now.
                _stream?.Release(l);
                onLayer?.Invoke(l + 1);
            }
        }
        finally
        {
            _stream?.Settle();
        }
        return Head(x).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The gradient of <paramref name="metric"/> (of the last position's logits, (vocab)) with respect to the residual
    /// stream at every boundary, (L + 1, T, d) fp32 on the CPU, from the states of one sequence's forward
    /// (<paramref name="states"/>, as <see cref="ResidualStates"/> gives them): through the final norm and head first,
    /// then through each layer from the last down, recomputed from its input (a vector-Jacobian product per layer). One
    /// layer's weights at a time: a streamed model reads its layers from the last down. <paramref name="metric"/> is
    /// told the logits once and returns a 0-d tensor.
    /// </summary>
    internal Tensor ResidualGradients(
        Tensor states,
        Func<Tensor, Tensor> metric,
        CancellationToken cancellation = default
    )
    {
        using var scope = NewDisposeScope();
        int layers = Spec.Layers;
        long t = states.shape[1];
        var (cos, sin) = Rotary.Tables(Spec, t, Device);
        var window = WindowMask(t);
        var grads = new Tensor[layers + 1];
        Tensor Leaf(int boundary) =>
            states[boundary].unsqueeze(0).to(DType).to(Device).detach().clone().requires_grad_(true);
        Tensor gradient;
        using (torch.enable_grad())
        {
            var top = Leaf(layers);
            var value = metric(Head(top.select(1, t - 1))[0]);
            gradient = torch.autograd.grad([value], [top])[0];
        }
        grads[layers] = gradient.to(ScalarType.Float32).cpu();
        _stream?.BeginBackward();
        try
        {
            for (var l = layers - 1; l >= 0; l--)
            {
                cancellation.ThrowIfCancellationRequested();
                var layer = _stream is null ? _model.Layers[l] : _stream.Acquire(l, cancellation);
                var mask = Spec.SlidesAt(l) && window is not null ? window : null;
                using (torch.enable_grad())
                {
                    var x = Leaf(l);
                    var y = layer.Forward(x, cos, sin, mask);
                    gradient = torch.autograd.grad([y], [x], [gradient])[0];
                }
                grads[l] = gradient.to(ScalarType.Float32).cpu();
                _stream?.Release(l);
            }
        }
        finally
        {
            _stream?.Settle();
        }
        return torch.cat(grads, 0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The rest of a forward from the residual states <paramref name="x"/> (B, T, d) at boundary
    /// <paramref name="boundary"/> (0: the embedding; l: after layer l), with <paramref name="edits"/> in the layers it
    /// runs: the last position's logits (B, vocab). What a sweep runs so that a change at layer l reuses the states
    /// below it. Resident decoders only (a streamed one reads its layers from the first, in order).
    /// </summary>
    internal Tensor RunFrom(Tensor x, int boundary, Interventions? edits, CancellationToken cancellation = default)
    {
        if (_stream is not null)
            throw new InvalidOperationException(
                $"{Spec.Name} is streamed: a forward from layer {boundary} needs its layers in memory."
            );
        using var scope = NewDisposeScope();
        long t = x.shape[1];
        var (cos, sin) = Rotary.Tables(Spec, t, Device);
        var window = WindowMask(t);
        for (var l = boundary; l < Spec.Layers; l++)
        {
            cancellation.ThrowIfCancellationRequested();
            var mask = Spec.SlidesAt(l) && window is not null ? window : null;
            var layerEdits = edits?.ForLayer(l);
            x = layerEdits is null
                ? _model.Layers[l].Forward(x, cos, sin, mask)
                : _model.Layers[l].Step(x, cos, sin, AttentionPath.Fused, mask, layerEdits).Output;
            if (edits is not null)
                x = edits.Patch(l + 1, x);
        }
        return Head(x.select(1, t - 1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The additive mask of a sliding-window layer for <paramref name="length"/> tokens; null when no layer slides or
    /// the window covers the whole sequence (the causal mask is then the same).
    /// </summary>
    public Tensor? WindowMask(long length) =>
        Spec.SlidingWindow is { } w && length > w ? Attention.SlidingWindowMask(length, w, Device) : null;

    /// <summary>The mask layer <paramref name="layer"/> attends under, given the forward's window mask; null:
    /// causal.</summary>
    public Tensor? MaskFor(int layer, Tensor? windowMask) => Spec.SlidesAt(layer) ? windowMask : null;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stream?.Dispose();
            _stream = null;
        }
        base.Dispose(disposing);
    }
}
