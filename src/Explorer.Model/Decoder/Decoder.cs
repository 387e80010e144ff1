using Explorer.Core.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

// The decoder, top to bottom as a reader meets it in llama's or nanoGPT's model.py: the small modules (RMSNorm,
// rotary embeddings, the bias-free projection, the embedding table), attention, the feed-forward block, one decoder
// layer, then the whole model and its forward. Shapes are commented at every reshape: B batch, T tokens, d hidden,
// H query heads, KV key/value heads, hd head dimension.
namespace Explorer.Model.Decoder;

/// <summary>y = x · rsqrt(mean(x²) + eps) · w, computed in fp32 as Hugging Face's LlamaRMSNorm does.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Scalar _eps; // held by the module for every call (HeldScalars)

    public RmsNorm(string name, long dim, double eps, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _eps = eps.ToScalar();
        register_parameter("weight", new Parameter(torch.ones(dim, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * torch.rsqrt((x32 * x32).mean([-1], keepdim: true).add(_eps));
        return (Weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Rotary position embeddings in Hugging Face's "halves" form: inv_freq_i = θ^(−2i/head_dim), and
/// rotate_half pairs element i with element i + head_dim/2.
/// </summary>
public static class Rotary
{
    /// <summary>cos and sin tables for positions [0, length): each (length, head_dim), fp32.</summary>
    public static (Tensor Cos, Tensor Sin) Tables(long length, long headDim, double theta, Device device)
    {
        using var scope = NewDisposeScope();
        // The frequencies and positions in double precision here, so no number travels as a TorchSharp Scalar.
        var inverse = Enumerable.Range(0, (int)(headDim / 2)).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headDim)).ToArray();
        var invFreq = torch.tensor(inverse, ScalarType.Float64, device);                                             // (hd/2)
        var positions = torch.tensor(Enumerable.Range(0, (int)length).Select(p => (double)p).ToArray(), ScalarType.Float64, device); // (T)
        var freqs = torch.outer(positions, invFreq);                                                               // (T, hd/2)
        var angles = torch.cat([freqs, freqs], -1);                                                                // (T, hd)
        return (angles.cos().to(ScalarType.Float32).MoveToOuterDisposeScope(),
                angles.sin().to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    /// <summary>x · cos + rotate_half(x) · sin for x of shape (B, heads, T, head_dim).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = torch.cat([-x2, x1], -1);
        return (x * cos.to(x.dtype)).Plus(rotated * sin.to(x.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A bias-free linear map, weight stored [out, in] as Hugging Face checkpoints store it. Unlike TorchSharp's
/// <c>nn.Linear</c> it does not initialise its weight: every decoder weight is either filled from a seed
/// (<see cref="Decoder.Create"/>) or read from a checkpoint, and a 7B model's Kaiming init alone took over a minute.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    public Projection(string name, long inFeatures, long outFeatures, Device device, ScalarType dtype) : base(name)
    {
        register_parameter("weight", new Parameter(torch.empty(outFeatures, inFeatures, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>x (…, in) → (…, out).</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, Weight);
}

/// <summary>The token embedding table (vocab, d). A plain parameter so that it can be built on the meta device.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{

    public TokenEmbedding(string name, long vocabulary, long hidden, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        register_parameter("weight", new Parameter(torch.empty(vocabulary, hidden, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>tokens (B, T) int64 → (B, T, d).</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var rows = Weight.index_select(0, tokens.reshape(-1));
        return rows.reshape(tokens.shape[0], tokens.shape[1], Weight.shape[1]).MoveToOuterDisposeScope();
    }
}

/// <summary>How attention is computed: the fused kernel, or explicitly, keeping the probabilities a trace records.</summary>
public enum AttentionPath
{
    /// <summary>PyTorch's scaled-dot-product attention: fastest, no probabilities.</summary>
    Fused,
    /// <summary>Scores, causal mask and softmax in fp32, the probabilities (B, heads, T, T) returned.</summary>
    KeepProbabilities,
}

/// <summary>Causal self-attention with RoPE and grouped-query attention (KV head g serves query heads g·n_rep … g·n_rep + n_rep − 1).</summary>
public sealed class Attention : nn.Module
{
    private readonly Projection _q, _k, _v, _o;
    private readonly long _heads, _kvHeads, _headDim;
    private readonly Scalar _scale; // 1/√hd, held by the module for every call (HeldScalars)

    public Attention(string name, long hidden, long heads, long kvHeads, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _heads = heads;
        _kvHeads = kvHeads;
        _headDim = hidden / heads;
        _scale = (1.0 / Math.Sqrt(_headDim)).ToScalar();
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
    /// Attends x (B, T, d) by <paramref name="path"/>: with <see cref="AttentionPath.KeepProbabilities"/> the softmax is
    /// computed explicitly (under the additive <paramref name="causalMask"/> (T, T), built here when not given) and its
    /// probabilities (B, heads, T, T) are returned; fused, none are.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, AttentionPath path, out Tensor? probabilities, Tensor? causalMask = null)
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
        if (path == AttentionPath.KeepProbabilities)
        {
            causalMask ??= CausalMask(t, x.device);
            // Scores and softmax in fp32 whatever the weights' dtype. GQA without copying K and V: the n_rep query
            // heads of a group are stacked along T and meet their one KV head in a single matmul.
            if (q.dtype != ScalarType.Float32)
            {
                q = q.to(ScalarType.Float32);
                k = k.to(ScalarType.Float32);
            }
            var grouped = q.reshape(b, _kvHeads, nRep * t, _headDim);                      // (B, KV, n_rep·T, hd)
            var scores = grouped.matmul(k.transpose(-2, -1)).view(b, _heads, t, t);        // (B, H, T, T)
            var probs = scores.mul_(_scale).add_(causalMask, HeldScalars.One).softmax(-1);
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
        torch.full(length, length, HeldScalars.NegativeInfinity, device: device).triu_(1);

    /// <summary>(B, KV, T, hd) → (B, KV·n_rep, T, hd), each KV head repeated for the query heads of its group.</summary>
    public static Tensor RepeatKv(Tensor x, long nRep) =>
        nRep == 1 ? x.alias() : x.repeat_interleave(nRep, dim: 1);
}

/// <summary>SwiGLU: down(silu(gate(x)) · up(x)); or, for the GELU variant, down(gelu(up(x))).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Projection? _gate;
    private readonly Projection _up, _down;

    public FeedForward(string name, long hidden, long intermediate, FfnKind kind, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        if (kind == FfnKind.SwiGlu)
        {
            _gate = new Projection("gate_proj", hidden, intermediate, device, dtype);
            register_module("gate_proj", _gate);
        }
        _up = new Projection("up_proj", hidden, intermediate, device, dtype);
        _down = new Projection("down_proj", intermediate, hidden, device, dtype);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inner = _gate is null
            ? nn.functional.gelu(_up.forward(x))
            : nn.functional.silu(_gate.forward(x)) * _up.forward(x);
        return _down.forward(inner).MoveToOuterDisposeScope();
    }
}

/// <summary>What one layer did, for the trace: its output and the two contributions it added.</summary>
public readonly record struct LayerStep(Tensor Output, Tensor AttentionOut, Tensor FfnOut, Tensor? Probabilities);

/// <summary>One decoder block: pre-norm x + attn(norm(x)), then h + ffn(norm(h)); or the post-norm variant.</summary>
public sealed class DecoderLayer : nn.Module
{
    private readonly RmsNorm _inputNorm, _postAttentionNorm;
    private readonly Attention _attention;
    private readonly FeedForward _ffn;
    private readonly NormPlacement _placement;

    public DecoderLayer(string name, ModelSpec spec, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _placement = spec.NormPlacement;
        _inputNorm = new RmsNorm("input_layernorm", spec.HiddenSize, spec.NormEpsilon, device, dtype);
        _attention = new Attention("self_attn", spec.HiddenSize, spec.AttentionHeads, spec.KeyValueHeads, device, dtype);
        _postAttentionNorm = new RmsNorm("post_attention_layernorm", spec.HiddenSize, spec.NormEpsilon, device, dtype);
        _ffn = new FeedForward("mlp", spec.HiddenSize, spec.IntermediateSize, spec.FfnKind, device, dtype);
        register_module("input_layernorm", _inputNorm);
        register_module("self_attn", _attention);
        register_module("post_attention_layernorm", _postAttentionNorm);
        register_module("mlp", _ffn);
    }

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin) => Step(x, cos, sin, AttentionPath.Fused).Output;

    /// <summary>
    /// Runs the block and returns the pieces a trace records; the attention probabilities too when
    /// <paramref name="path"/> keeps them (<paramref name="causalMask"/>: one mask shared by every layer of a forward).
    /// All tensors belong to the caller's scope.
    /// </summary>
    public LayerStep Step(Tensor x, Tensor cos, Tensor sin, AttentionPath path, Tensor? causalMask = null)
    {
        Tensor attention, ffn, output;
        Tensor? probs;
        if (_placement == NormPlacement.Pre)
        {
            attention = _attention.Forward(_inputNorm.forward(x), cos, sin, path, out probs, causalMask);
            var h = x.Plus(attention);
            ffn = _ffn.forward(_postAttentionNorm.forward(h));
            output = h.Plus(ffn);
        }
        else
        {
            attention = _attention.Forward(x, cos, sin, path, out probs, causalMask);
            var h = _inputNorm.forward(x.Plus(attention));
            ffn = _ffn.forward(h);
            output = _postAttentionNorm.forward(h.Plus(ffn));
        }
        return new LayerStep(output, attention, ffn, probs);
    }
}

/// <summary>
/// The DeepSeek LLM decoder (LLaMA micro design): token embedding, N pre-norm blocks of RMSNorm → attention with
/// RoPE and GQA → residual, RMSNorm → SwiGLU → residual, a final RMSNorm and an untied LM head, no biases.
/// Parameter names follow the Hugging Face layout (<c>model.layers.N.self_attn.q_proj.weight</c>, …).
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

        /// <param name="residentLayers">False for a streamed decoder: its layers are read as a forward reaches them.</param>
        public Body(ModelSpec spec, Device device, ScalarType dtype, bool residentLayers = true) : base("model")
        {
            Embed = new TokenEmbedding("embed_tokens", spec.VocabularySize, spec.HiddenSize, device, dtype);
            Layers = new ModuleList<DecoderLayer>();
            for (var i = 0; i < (residentLayers ? spec.Layers : 0); i++)
                Layers.Add(new DecoderLayer(i.ToString(), spec, device, dtype));
            Norm = new RmsNorm("norm", spec.HiddenSize, spec.NormEpsilon, device, dtype);
            register_module("embed_tokens", Embed);
            register_module("layers", Layers);
            register_module("norm", Norm);
        }
    }

    private ILayerSource? _stream;

    private Decoder(ModelSpec spec, DecoderOptions options, Device device, ScalarType dtype, bool residentLayers = true) : base("decoder")
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
            throw new ArgumentException($"DType {options.DType} is not supported; use Float32 or BFloat16.", nameof(options));
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
        var decoder = new Decoder(spec, new DecoderOptions { Initialise = false, DType = dtype, Device = CPU }, CPU, dtype, residentLayers: false);
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
                parameter.fill_(HeldScalars.One);
            else
            {
                var scaled = name.EndsWith("o_proj.weight", StringComparison.Ordinal) || name.EndsWith("down_proj.weight", StringComparison.Ordinal);
                using var values = torch.randn(parameter.shape, generator: generator);
                parameter.copy_(values.mul_(scaled ? outputStd : hiddenStd));
            }
        }
    }

    /// <summary>The resident layers; a streamed decoder has none in memory, so what needs them (training, split runs) refuses it.</summary>
    public IReadOnlyList<DecoderLayer> Layers => _stream is null
        ? _model.Layers.ToArray()
        : throw new InvalidOperationException($"{Spec.Name} is streamed from its files layer by layer: it runs traced forwards, not training or split runs. Load it resident for those.");
    internal TokenEmbedding Embedding => _model.Embed;

    /// <summary>tokens (B, T) → embeddings (B, T, d): the first unit of a pipeline split.</summary>
    public Tensor Embed(Tensor tokens)
    {
        using var onDevice = tokens.to(Device);
        return _model.Embed.forward(onDevice);
    }
    internal RmsNorm FinalNorm => _model.Norm;
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

    /// <summary>One sequence (1, T) with the trace the options ask for; cancellation is checked between layers.</summary>
    public DecoderTrace Trace(Tensor tokens, TraceOptions options, CancellationToken cancellation = default, Action<int>? onLayer = null)
    {
        if (tokens.dim() != 2 || tokens.shape[0] != 1)
            throw new ArgumentException($"Tracing takes one sequence, shape (1, T); got ({string.Join(", ", tokens.shape)}).", nameof(tokens));
        using var noGrad = torch.no_grad();
        var recorder = new TraceRecorder(this, options, tokens.shape[1]);
        try
        {
            var logits = Run(tokens, recorder, cancellation, onLayer);
            return recorder.Finish(tokens, logits);
        }
        catch
        {
            recorder.Dispose();
            throw;
        }
    }

    /// <param name="onLayer">Told the number of layers done after each one (a streamed 95-layer forward takes minutes).</param>
    internal Tensor Run(Tensor tokens, TraceRecorder? recorder, CancellationToken cancellation = default, Action<int>? onLayer = null)
    {
        if (tokens.dtype != ScalarType.Int64)
            throw new ArgumentException($"Token ids must be int64; got {tokens.dtype}.", nameof(tokens));
        using var scope = NewDisposeScope();
        long t = tokens.shape[1];
        var x = _model.Embed.forward(tokens.to(Device)); // (B, T, d)
        var (cos, sin) = Rotary.Tables(t, Spec.HeadDim, Spec.RopeTheta, Device);
        recorder?.OnEmbedding(x);
        var path = recorder?.KeepsAttention == true ? AttentionPath.KeepProbabilities : AttentionPath.Fused;
        var mask = path == AttentionPath.KeepProbabilities ? Attention.CausalMask(t, Device) : null; // one for every layer
        _stream?.BeginForward();
        try
        {
            for (var l = 0; l < Spec.Layers; l++)
            {
                cancellation.ThrowIfCancellationRequested();
                var layer = _stream is null ? _model.Layers[l] : _stream.Acquire(l, cancellation);
                if (recorder is null)
                    x = layer.Forward(x, cos, sin);
                else
                {
                    var step = layer.Step(x, cos, sin, path, mask);
                    recorder.OnLayer(l, x, step);
                    x = step.Output;
                }
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
