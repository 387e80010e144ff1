using System.Text.Json;
using System.Text.Json.Nodes;

namespace Explorer.Core.Specs;

/// <summary>Writes a spec as a Hugging Face LlamaForCausalLM config.json that <see cref="HfConfigReader"/> reads back.</summary>
public static class HfConfigWriter
{
    public static string ToJson(ModelSpec spec, string torchDtype = "float32")
    {
        SpecValidator.EnsureValid(spec);
        if (spec.NormPlacement != NormPlacement.Pre || spec.FfnKind != FfnKind.SwiGlu)
            throw new ArgumentException(
                $"{spec.Name} uses {spec.NormPlacement}-norm with a {spec.FfnKind} FFN; a LlamaForCausalLM config.json describes only pre-norm SwiGLU models.",
                nameof(spec));
        var json = new JsonObject
        {
            ["_name_or_path"] = spec.Name,
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_act"] = "silu",
            ["hidden_size"] = spec.HiddenSize,
            ["intermediate_size"] = spec.IntermediateSize,
            ["num_hidden_layers"] = spec.Layers,
            ["num_attention_heads"] = spec.AttentionHeads,
            ["num_key_value_heads"] = spec.KeyValueHeads,
            ["vocab_size"] = spec.VocabularySize,
            ["max_position_embeddings"] = spec.ContextLength,
            ["rope_theta"] = spec.RopeTheta,
            ["rms_norm_eps"] = spec.NormEpsilon,
            ["tie_word_embeddings"] = spec.TiedEmbeddings,
            ["torch_dtype"] = torchDtype,
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
