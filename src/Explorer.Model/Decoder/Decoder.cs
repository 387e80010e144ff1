using Explorer.Core.Specs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

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

        public Body(ModelSpec spec, Device device, ScalarType dtype) : base("model")
        {
            Embed = new TokenEmbedding("embed_tokens", spec.VocabularySize, spec.HiddenSize, device, dtype);
            Layers = new ModuleList<DecoderLayer>();
            for (var i = 0; i < spec.Layers; i++)
                Layers.Add(new DecoderLayer(i.ToString(), spec, device, dtype));
            Norm = new RmsNorm("norm", spec.HiddenSize, spec.NormEpsilon, device, dtype);
            register_module("embed_tokens", Embed);
            register_module("layers", Layers);
            register_module("norm", Norm);
        }
    }

    private Decoder(ModelSpec spec, DecoderOptions options, Device device, ScalarType dtype) : base("decoder")
    {
        Spec = spec;
        Options = options;
        _model = new Body(spec, device, dtype);
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
        Hosting.NativeMemory.Configure();
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

    private void Initialise(ulong seed, double std)
    {
        using var noGrad = torch.no_grad();
        var generator = new Generator(seed, CPU);
        var outputStd = std / Math.Sqrt(2.0 * Spec.Layers);
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                parameter.fill_(1.0);
            else
            {
                var scaled = name.EndsWith("o_proj.weight", StringComparison.Ordinal) || name.EndsWith("down_proj.weight", StringComparison.Ordinal);
                using var values = torch.randn(parameter.shape, generator: generator);
                parameter.copy_(values.mul_(scaled ? outputStd : std));
            }
        }
    }

    public IReadOnlyList<DecoderLayer> Layers => _model.Layers.ToArray();
    internal TokenEmbedding Embedding => _model.Embed;

    /// <summary>tokens (B, T) → embeddings (B, T, d): the first unit of a pipeline split.</summary>
    public Tensor Embed(Tensor tokens) => _model.Embed.forward(tokens.to(Device));
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
    public DecoderTrace Trace(Tensor tokens, TraceOptions options, CancellationToken cancellation = default)
    {
        if (tokens.dim() != 2 || tokens.shape[0] != 1)
            throw new ArgumentException($"Tracing takes one sequence, shape (1, T); got ({string.Join(", ", tokens.shape)}).", nameof(tokens));
        using var noGrad = torch.no_grad();
        var recorder = new TraceRecorder(this, options, tokens.shape[1]);
        try
        {
            var logits = Run(tokens, recorder, cancellation);
            return recorder.Finish(tokens, logits);
        }
        catch
        {
            recorder.Dispose();
            throw;
        }
    }

    internal Tensor Run(Tensor tokens, TraceRecorder? recorder, CancellationToken cancellation = default)
    {
        if (tokens.dtype != ScalarType.Int64)
            throw new ArgumentException($"Token ids must be int64; got {tokens.dtype}.", nameof(tokens));
        using var scope = NewDisposeScope();
        long t = tokens.shape[1];
        var x = _model.Embed.forward(tokens.to(Device)); // (B, T, d)
        var (cos, sin) = Rotary.Tables(t, Spec.HeadDim, Spec.RopeTheta, Device);
        recorder?.OnEmbedding(x);
        var mask = recorder?.KeepsAttention == true ? Attention.CausalMask(t, Device) : null;
        for (var l = 0; l < _model.Layers.Count; l++)
        {
            if (recorder is null)
            {
                x = _model.Layers[l].Forward(x, cos, sin);
                continue;
            }
            cancellation.ThrowIfCancellationRequested();
            var step = _model.Layers[l].Step(x, cos, sin, mask);
            recorder.OnLayer(l, x, step);
            x = step.Output;
        }
        return Head(x).MoveToOuterDisposeScope();
    }
}
