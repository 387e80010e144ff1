using TorchSharp;
using Explorer.Core.Specs;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

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

    public Tensor Forward(Tensor x, Tensor cos, Tensor sin) => Step(x, cos, sin, causalMask: null).Output;

    /// <summary>
    /// Runs the block and returns the pieces a trace records; with a causal mask the attention probabilities are
    /// computed explicitly and returned. All tensors belong to the caller's scope.
    /// </summary>
    public LayerStep Step(Tensor x, Tensor cos, Tensor sin, Tensor? causalMask)
    {
        Tensor attention, ffn, output;
        Tensor? probs;
        if (_placement == NormPlacement.Pre)
        {
            attention = _attention.Forward(_inputNorm.forward(x), cos, sin, causalMask, out probs);
            var h = x + attention;
            ffn = _ffn.forward(_postAttentionNorm.forward(h));
            output = h + ffn;
        }
        else
        {
            attention = _attention.Forward(x, cos, sin, causalMask, out probs);
            var h = _inputNorm.forward(x + attention);
            ffn = _ffn.forward(h);
            output = _postAttentionNorm.forward(h + ffn);
        }
        return new LayerStep(output, attention, ffn, probs);
    }
}
