using System.Text.Json;

namespace Explorer.Core.Specs;

/// <summary>
/// What a family's config class reads and what it assumes when a field is absent, from transformers' configuration and
/// modeling files: Llama, Mistral, Qwen2 and Phi-3 at v4.56 (modeling_qwen3.py, modeling_gemma.py and modeling_olmo2.py
/// read at commit 9ee3f431c32e9e5f6c0888f6b2b0ca3f6c289dd6; modeling_phi3.py at
/// 00d4b3d2142cb4ced2f51b90614b5d26bc045015; the rotary scalings in modeling_rope_utils.py at
/// 0044e3b3facff1a1ad60b235c69d5b45beae75a4, unchanged since in what they compute; masking_utils' sliding window: key j
/// is seen by query i when i − window &lt; j ≤ i).
/// </summary>
/// <param name="ReadsOnly">Interpreted fields this family's class reads; the others it ignores (a warning).</param>
public sealed record FamilyRules(
    ModelFamily Family,
    string Class,
    string ModelType,
    string DefaultActivation,
    double DefaultEpsilon,
    bool DefaultTied,
    int? DefaultHeadDim,
    int? DefaultWindow,
    int DefaultContext,
    IReadOnlySet<string> ReadsOnly,
    double DefaultRopeTheta = 10000
)
{
    private static readonly HashSet<string> Common =
    [
        "architectures",
        "model_type",
        "hidden_act",
        "num_key_value_heads",
        "max_position_embeddings",
        "rope_theta",
        "rms_norm_eps",
        "tie_word_embeddings",
        "head_dim",
        "rope_scaling",
        "rope_parameters",
        "_name_or_path",
        "partial_rotary_factor", // read by the rotary tables of every family; refused unless 1
    ];

    private static HashSet<string> With(params string[] extra) => [.. Common, .. extra];

    /// <summary>Every supported family.</summary>
    public static IReadOnlyList<FamilyRules> All { get; } =
    [
        new(
            ModelFamily.Llama,
            "LlamaForCausalLM",
            "llama",
            "silu",
            1e-6,
            false,
            null,
            null,
            2048,
            With("attention_bias", "mlp_bias")
        ),
        new(
            ModelFamily.Mistral,
            "MistralForCausalLM",
            "mistral",
            "silu",
            1e-6,
            false,
            null,
            4096,
            131072,
            With("sliding_window")
        ),
        new(
            ModelFamily.Qwen2,
            "Qwen2ForCausalLM",
            "qwen2",
            "silu",
            1e-6,
            false,
            null,
            4096,
            32768,
            With("sliding_window", "use_sliding_window", "max_window_layers", "layer_types")
        ),
        new(
            ModelFamily.Qwen3,
            "Qwen3ForCausalLM",
            "qwen3",
            "silu",
            1e-6,
            false,
            128,
            4096,
            32768,
            With("attention_bias", "sliding_window", "use_sliding_window", "max_window_layers", "layer_types")
        ),
        new(
            ModelFamily.Gemma,
            "GemmaForCausalLM",
            "gemma",
            "gelu_pytorch_tanh",
            1e-6,
            true,
            256,
            null,
            8192,
            With("attention_bias", "hidden_activation")
        ),
        new(ModelFamily.Phi3, "Phi3ForCausalLM", "phi3", "silu", 1e-5, false, null, null, 4096, With("sliding_window")),
        new(
            ModelFamily.Olmo2,
            "Olmo2ForCausalLM",
            "olmo2",
            "silu",
            1e-5,
            false,
            null,
            null,
            2048,
            With("attention_bias")
        ),
    ];

    public static FamilyRules Of(ModelFamily family) => All.First(r => r.Family == family);

    /// <summary>Whether this family's class reads <paramref name="field"/>.</summary>
    public bool Reads(string field) => ReadsOnly.Contains(field);

    private static string Supported => string.Join(", ", All.Select(r => r.Class));

    /// <summary>
    /// The family named by <c>architectures</c> and <c>model_type</c> (they must agree); a config with neither is read
    /// as LLaMA, as Explorer always has. Null, with the errors, when unsupported.
    /// </summary>
    internal static FamilyRules? Detect(JsonFields fields, List<SpecError> errors)
    {
        FamilyRules? byClass = null,
            byType = null;
        if (fields.Root.TryGetProperty("architectures", out var archs) && archs.ValueKind != JsonValueKind.Null)
        {
            var names =
                archs.ValueKind == JsonValueKind.Array
                    ? archs
                        .EnumerateArray()
                        .Select(a => a.ValueKind == JsonValueKind.String ? a.GetString() : a.GetRawText())
                        .ToArray()
                    : [archs.GetRawText()];
            byClass = All.FirstOrDefault(r => names.Contains(r.Class));
            if (byClass is null)
            {
                errors.Add(
                    new("architectures", HfConfigReader.Short(archs), $"must name a supported decoder: {Supported}")
                );
                return null;
            }
        }
        if (fields.Text("model_type") is { } type)
        {
            byType = All.FirstOrDefault(r => r.ModelType == type);
            if (byType is null)
            {
                errors.Add(
                    new(
                        "model_type",
                        $"\"{type}\"",
                        $"must be one of {string.Join(", ", All.Select(r => $"\"{r.ModelType}\""))}"
                    )
                );
                return null;
            }
        }
        if (byClass is not null && byType is not null && byClass != byType)
        {
            errors.Add(
                new(
                    "model_type",
                    $"\"{byType.ModelType}\"",
                    $"must be \"{byClass.ModelType}\" for architectures {byClass.Class}"
                )
            );
            return null;
        }
        return byClass ?? byType ?? Of(ModelFamily.Llama);
    }
}
