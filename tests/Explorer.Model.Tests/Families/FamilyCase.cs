using System.Globalization;
using System.Text;

namespace Explorer.Model.Tests.Families;

/// <summary>
/// A tiny model of one family as the reference forward sees it: the shape and every design choice, written out by
/// hand from transformers' modeling files (not from Explorer's spec). <see cref="ConfigJson"/> writes the config.json
/// the family's config class would save, <see cref="WeightShapes"/> the tensors its modules hold, named as its
/// checkpoints name them.
/// </summary>
internal sealed record FamilyCase(
    string Name,
    string Family, // model_type
    int Layers = 2,
    int Hidden = 32,
    int Ffn = 48,
    int Heads = 4,
    int KvHeads = 2,
    int HeadDim = 8,
    int Vocab = 40,
    double Theta = 10000,
    double Eps = 1e-6,
    bool Tied = false,
    string Act = "silu",
    bool QkvBias = false, // Qwen2's q, k, v biases (fixed by the family)
    bool AttentionBias = false, // attention_bias: q, k, v and o
    bool MlpBias = false,
    int? Window = null, // sliding_window in effect
    int FirstSliding = 0, // max_window_layers
    string? RopeScaling = null, // the rope_scaling object's JSON, or null
    int MaxPositions = 64,
    bool ExplicitHeadDim = false
)
{
    public string Class =>
        Family switch
        {
            "llama" => "LlamaForCausalLM",
            "mistral" => "MistralForCausalLM",
            "qwen2" => "Qwen2ForCausalLM",
            "qwen3" => "Qwen3ForCausalLM",
            "gemma" => "GemmaForCausalLM",
            "phi3" => "Phi3ForCausalLM",
            "olmo2" => "Olmo2ForCausalLM",
            _ => throw new ArgumentException(Family),
        };

    public bool Fused => Family == "phi3";
    public bool BranchNorms => Family == "olmo2";
    public bool OnePlusNorm => Family == "gemma";
    public bool ScaledEmbedding => Family == "gemma";
    public string QkNorm =>
        Family switch
        {
            "qwen3" => "head",
            "olmo2" => "all",
            _ => "none",
        };

    public string ConfigJson()
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var b = new StringBuilder();
        b.Append(
            $$"""
            {
              "architectures": ["{{Class}}"],
              "model_type": "{{Family}}",
              "hidden_size": {{Hidden}},
              "intermediate_size": {{Ffn}},
              "num_hidden_layers": {{Layers}},
              "num_attention_heads": {{Heads}},
              "num_key_value_heads": {{KvHeads}},
              "vocab_size": {{Vocab}},
              "max_position_embeddings": {{MaxPositions}},
              "rope_theta": {{F(Theta)}},
              "rms_norm_eps": {{F(Eps)}},
              "tie_word_embeddings": {{(Tied ? "true" : "false")}},
              "hidden_act": "{{Act}}",
              "rope_scaling": {{RopeScaling ?? "null"}},
              "bos_token_id": 1,
              "eos_token_id": 2,
              "attention_dropout": 0.0,
              "initializer_range": 0.02,
              "use_cache": true,
              "torch_dtype": "float32",
              "transformers_version": "4.56.0"
            """
        );
        if (ExplicitHeadDim || Family is "gemma" or "qwen3")
            b.Append($",\n  \"head_dim\": {HeadDim}");
        if (Family is "llama" or "qwen3" or "gemma" or "olmo2")
            b.Append($",\n  \"attention_bias\": {(AttentionBias ? "true" : "false")}");
        if (Family == "llama")
            b.Append($",\n  \"mlp_bias\": {(MlpBias ? "true" : "false")}");
        if (Family is "mistral" or "phi3")
            b.Append($",\n  \"sliding_window\": {(Window?.ToString() ?? "null")}");
        if (Family is "qwen2" or "qwen3")
            b.Append(
                $",\n  \"use_sliding_window\": {(Window is null ? "false" : "true")},\n  "
                    + $"\"sliding_window\": {Window ?? 4096},\n  \"max_window_layers\": {FirstSliding}"
            );
        if (Family == "phi3")
            b.Append(",\n  \"embd_pdrop\": 0.0,\n  \"resid_pdrop\": 0.0,\n  \"original_max_position_embeddings\": 64");
        b.Append("\n}\n");
        return b.ToString();
    }

    /// <summary>Every tensor of the checkpoint, named and shaped as the family's modules hold them.</summary>
    public IEnumerable<(string Name, int[] Shape)> WeightShapes()
    {
        int q = Heads * HeadDim,
            kv = KvHeads * HeadDim;
        yield return ("model.embed_tokens.weight", [Vocab, Hidden]);
        for (var l = 0; l < Layers; l++)
        {
            var p = $"model.layers.{l}.";
            if (Fused)
                yield return (p + "self_attn.qkv_proj.weight", [q + 2 * kv, Hidden]);
            else
            {
                yield return (p + "self_attn.q_proj.weight", [q, Hidden]);
                yield return (p + "self_attn.k_proj.weight", [kv, Hidden]);
                yield return (p + "self_attn.v_proj.weight", [kv, Hidden]);
                if (QkvBias || AttentionBias)
                {
                    yield return (p + "self_attn.q_proj.bias", [q]);
                    yield return (p + "self_attn.k_proj.bias", [kv]);
                    yield return (p + "self_attn.v_proj.bias", [kv]);
                }
            }
            yield return (p + "self_attn.o_proj.weight", [Hidden, q]);
            if (AttentionBias)
                yield return (p + "self_attn.o_proj.bias", [Hidden]);
            if (QkNorm == "head")
            {
                yield return (p + "self_attn.q_norm.weight", [HeadDim]);
                yield return (p + "self_attn.k_norm.weight", [HeadDim]);
            }
            else if (QkNorm == "all")
            {
                yield return (p + "self_attn.q_norm.weight", [q]);
                yield return (p + "self_attn.k_norm.weight", [kv]);
            }
            if (Fused)
                yield return (p + "mlp.gate_up_proj.weight", [2 * Ffn, Hidden]);
            else
            {
                yield return (p + "mlp.gate_proj.weight", [Ffn, Hidden]);
                yield return (p + "mlp.up_proj.weight", [Ffn, Hidden]);
            }
            yield return (p + "mlp.down_proj.weight", [Hidden, Ffn]);
            if (MlpBias)
            {
                yield return (p + "mlp.gate_proj.bias", [Ffn]);
                yield return (p + "mlp.up_proj.bias", [Ffn]);
                yield return (p + "mlp.down_proj.bias", [Hidden]);
            }
            if (BranchNorms)
            {
                yield return (p + "post_attention_layernorm.weight", [Hidden]);
                yield return (p + "post_feedforward_layernorm.weight", [Hidden]);
            }
            else
            {
                yield return (p + "input_layernorm.weight", [Hidden]);
                yield return (p + "post_attention_layernorm.weight", [Hidden]);
            }
        }
        yield return ("model.norm.weight", [Hidden]);
        if (!Tied)
            yield return ("lm_head.weight", [Vocab, Hidden]);
    }

    public override string ToString() => Name;
}
