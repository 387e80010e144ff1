using System.Text.Json;
using System.Text.Json.Nodes;

namespace Explorer.Core.Specs;

/// <summary>Writes a spec as the config.json of its family's causal-LM class, which <see cref="HfConfigReader"/> (and
/// transformers) read back as the same model.</summary>
public static class HfConfigWriter
{
    public static string ToJson(ModelSpec spec, string torchDtype = "float32")
    {
        SpecValidator.EnsureValid(spec);
        var rules = FamilyRules.Of(spec.Family);
        if (
            spec.NormPlacement != (spec.Family == ModelFamily.Olmo2 ? NormPlacement.BranchOutput : NormPlacement.Pre)
            || spec.FfnKind != FfnKind.SwiGlu
        )
            throw new ArgumentException(
                $"{spec.Name} uses {spec.NormPlacement}-norm with a {spec.FfnKind} FFN; a {rules.Class} "
                    + "config.json describes only its family's own design.",
                nameof(spec)
            );
        var json = new JsonObject
        {
            ["_name_or_path"] = spec.Name,
            ["architectures"] = new JsonArray(rules.Class),
            ["model_type"] = rules.ModelType,
            ["hidden_act"] = spec.Activation switch
            {
                Activation.Gelu => "gelu",
                Activation.GeluTanh => "gelu_pytorch_tanh",
                _ => "silu",
            },
            ["hidden_size"] = spec.HiddenSize,
            ["intermediate_size"] = spec.IntermediateSize,
            ["num_hidden_layers"] = spec.Layers,
            ["num_attention_heads"] = spec.AttentionHeads,
            ["num_key_value_heads"] = spec.KeyValueHeads,
            ["head_dim"] = spec.HeadDim,
            ["vocab_size"] = spec.VocabularySize,
            ["max_position_embeddings"] = spec.ContextLength,
            ["rope_theta"] = spec.RopeTheta,
            ["rope_scaling"] = spec.RopeScaling switch
            {
                null => null,
                { Kind: RopeScalingKind.Llama3 } r => new JsonObject
                {
                    ["rope_type"] = "llama3",
                    ["factor"] = r.Factor,
                    ["low_freq_factor"] = r.LowFrequencyFactor,
                    ["high_freq_factor"] = r.HighFrequencyFactor,
                    ["original_max_position_embeddings"] = r.OriginalContext,
                },
                { Kind: RopeScalingKind.Linear } r => new JsonObject
                {
                    ["rope_type"] = "linear",
                    ["factor"] = r.Factor,
                },
                var r => new JsonObject { ["rope_type"] = "dynamic", ["factor"] = r.Factor },
            },
            ["rms_norm_eps"] = spec.NormEpsilon,
            ["tie_word_embeddings"] = spec.TiedEmbeddings,
            ["torch_dtype"] = torchDtype,
        };
        if (rules.Reads("attention_bias"))
            json["attention_bias"] = spec.AttentionBias == AttentionBias.All;
        else if (
            spec.AttentionBias != (spec.Family == ModelFamily.Qwen2 ? AttentionBias.QueryKeyValue : AttentionBias.None)
        )
            throw new ArgumentException(
                $"{spec.Name}: {rules.Class} cannot have attention biases {spec.AttentionBias}.",
                nameof(spec)
            );
        if (rules.Reads("mlp_bias"))
            json["mlp_bias"] = spec.MlpBias;
        if (rules.Reads("use_sliding_window"))
        {
            json["use_sliding_window"] = spec.SlidingWindow is not null;
            json["sliding_window"] = spec.SlidingWindow;
            json["max_window_layers"] = spec.FirstSlidingLayer;
        }
        else if (rules.Reads("sliding_window"))
            json["sliding_window"] = spec.SlidingWindow;
        var text = json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        // What the family cannot express (a q/k norm on LLaMA, a window from layer 3 on Mistral) would come back as a
        // different model: refused rather than written.
        var back = HfConfigReader.Read(text, spec.Name);
        if (!back.Succeeded || back.Spec! with { Name = spec.Name } != spec)
            throw new ArgumentException(
                $"{spec.Name} cannot be written as a {rules.Class} config.json: it would read back as a "
                    + "different model "
                    + $"({(back.Succeeded ? "differs in its design fields" : string.Join("; ", back.Errors))}).",
                nameof(spec)
            );
        return text;
    }
}
