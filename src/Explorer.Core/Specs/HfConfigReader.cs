using System.Text.Json;

namespace Explorer.Core.Specs;

/// <summary>The outcome of reading a config.json: a spec when it could be read, and what was noticed.</summary>
public sealed record HfConfigResult(ModelSpec? Spec, IReadOnlyList<SpecError> Errors, IReadOnlyList<string> Warnings)
{
    public bool Succeeded => Spec is not null && Errors.Count == 0;
}

/// <summary>
/// Reads a Hugging Face <c>config.json</c> of a supported decoder family into a <see cref="ModelSpec"/>, exactly as
/// transformers builds the model from it. Every field either sets something in the spec, is known not to change the
/// forward (dropout, token ids, cache and dtype settings), or is refused naming it; a field it does not know is a
/// warning that reaches the CLI and the Models page. Families and what each reads (transformers' config and modeling
/// files, read at the commits named in <see cref="FamilyRules"/>): see <see cref="FamilyRules.Of"/>.
/// </summary>
public static class HfConfigReader
{
    /// <summary>Largest config.json accepted; real ones are about 1 KB.</summary>
    public const int MaxBytes = 1 << 20;

    private static readonly string[] Required =
    [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
    ];

    // Fields that set something in the spec (read below) for some family.
    private static readonly HashSet<string> Interpreted =
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
        "attention_bias",
        "mlp_bias",
        "rope_scaling",
        "rope_parameters",
        "sliding_window",
        "use_sliding_window",
        "max_window_layers",
        "layer_types",
        "partial_rotary_factor",
        "hidden_activation",
        "_name_or_path",
    ];

    // Fields that do not change an inference forward: dropout, ids, cache, dtype, initialisation, bookkeeping.
    private static readonly HashSet<string> Inert =
    [
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "initializer_range",
        "pretraining_tp",
        "use_cache",
        "torch_dtype",
        "dtype",
        "transformers_version",
        "attention_dropout",
        "embd_pdrop",
        "resid_pdrop",
        "_attn_implementation",
        "output_attentions",
        "output_hidden_states",
        "return_dict",
        "tokenizer_class",
        "use_return_dict",
        "id2label",
        "label2id",
        "auto_map", // warned about below
        "original_max_position_embeddings", // read by Phi-3's longrope scaling only, which is refused
    ];

    // Fields of families Explorer does not run (Gemma 2/3, OLMo 1, quantized checkpoints): refused unless null or off.
    private static readonly Dictionary<string, string> Refused = new()
    {
        ["attn_logit_softcapping"] = "attention logit soft-capping (Gemma 2) is not supported",
        ["final_logit_softcapping"] = "final logit soft-capping (Gemma 2) is not supported",
        ["query_pre_attn_scalar"] = "a query scale other than 1/√head_dim (Gemma 2) is not supported",
        ["clip_qkv"] = "clipping q, k and v (OLMo 1) is not supported",
        ["quantization_config"] = "quantized checkpoints are not supported; use an fp32, fp16 or bf16 one",
        ["use_bidirectional_attention"] = "bidirectional attention is not supported; Explorer runs causal decoders",
        ["logits_scaling"] = "scaled logits are not supported",
        ["use_mrope"] = "multimodal rotary embeddings (Qwen2-VL) are not supported",
        ["embedding_multiplier"] = "embedding multipliers are not supported",
        ["residual_multiplier"] = "residual multipliers are not supported",
        ["attention_multiplier"] = "attention multipliers are not supported",
    };

    /// <summary>Reads a config file from disk; a name for the spec comes from its folder.</summary>
    public static HfConfigResult ReadFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            return Fail("file", path, "does not exist");
        if (info.Length > MaxBytes)
            return Fail("file", path, $"is {info.Length:N0} bytes; a config.json may be at most {MaxBytes:N0} bytes");
        var name =
            info.Directory?.Name is { Length: > 0 } dir && info.Name == "config.json"
                ? dir
                : Path.GetFileNameWithoutExtension(path);
        return Read(File.ReadAllBytes(path), name);
    }

    /// <summary>Reads config.json bytes (UTF-8).</summary>
    public static HfConfigResult Read(ReadOnlySpan<byte> utf8Json, string fallbackName)
    {
        if (utf8Json.Length > MaxBytes)
            return Fail(
                "config.json",
                $"{utf8Json.Length:N0} bytes",
                $"is larger than the {MaxBytes:N0} bytes allowed"
            );
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
            return Fail("config.json", "(not UTF-8)", "is not valid UTF-8 text; save it as UTF-8");
        try
        {
            using var doc = JsonDocument.Parse(utf8Json.ToArray(), new JsonDocumentOptions { MaxDepth = 32 });
            return Read(doc.RootElement, fallbackName);
        }
        catch (JsonException e)
        {
            return Fail(
                "config.json",
                "(not JSON)",
                $"is not valid JSON: {e.Message.Split(" Path:")[0]} (line {e.LineNumber + 1}, byte "
                    + $"{e.BytePositionInLine + 1})"
            );
        }
    }

    /// <summary>Reads config.json text.</summary>
    public static HfConfigResult Read(string json, string fallbackName) =>
        Read(System.Text.Encoding.UTF8.GetBytes(json), fallbackName);

    private static HfConfigResult Read(JsonElement root, string fallbackName)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return Fail("config.json", root.ValueKind.ToString(), "must be a JSON object of a model config's fields");

        var errors = new List<SpecError>();
        var warnings = new List<string>();
        var fields = new JsonFields(root, errors);

        var rules = FamilyRules.Detect(fields, errors);
        if (rules is null)
            return new(null, errors, warnings);

        foreach (var field in Required)
            if (!root.TryGetProperty(field, out _))
                errors.Add(new(field, "(missing)", "is required"));
        foreach (var property in root.EnumerateObject())
        {
            var field = property.Name;
            if (Refused.TryGetValue(field, out var why))
            {
                if (property.Value.ValueKind is not (JsonValueKind.Null or JsonValueKind.False))
                    errors.Add(new(field, Short(property.Value), why));
            }
            else if (!Required.Contains(field) && !Interpreted.Contains(field) && !Inert.Contains(field))
                warnings.Add(
                    $"Unknown field '{field}' = {Short(property.Value)} ignored: {rules.Class} in "
                        + "transformers does not read it, as far as Explorer knows."
                );
            else if (Interpreted.Contains(field) && !rules.Reads(field))
                warnings.Add(
                    $"'{field}' = {Short(property.Value)} ignored: {rules.Class} in transformers does not read it."
                );
        }
        if (root.TryGetProperty("auto_map", out var autoMap) && autoMap.ValueKind != JsonValueKind.Null)
            warnings.Add(
                $"auto_map names custom modeling code; Explorer runs transformers' own {rules.Class}, "
                    + "as transformers does without trust_remote_code."
            );

        var hidden = fields.Int("hidden_size", 0);
        var heads = fields.Int("num_attention_heads", 0);
        var layers = fields.Int("num_hidden_layers", 0);
        var context = fields.Int("max_position_embeddings", rules.DefaultContext);

        // The activation: transformers' ACT2FN[hidden_act].
        var actName = fields.Text("hidden_act") ?? rules.DefaultActivation;
        Activation activation = Activation.Silu;
        switch (actName)
        {
            case "silu" or "swish":
                activation = Activation.Silu;
                break;
            case "gelu":
                activation = Activation.Gelu;
                break;
            case "gelu_pytorch_tanh" or "gelu_new":
                activation = Activation.GeluTanh;
                break;
            default:
                errors.Add(
                    new(
                        "hidden_act",
                        $"\"{actName}\"",
                        "must be \"silu\", \"gelu\", \"gelu_pytorch_tanh\" or \"gelu_new\""
                    )
                );
                break;
        }
        if (
            rules.Family == ModelFamily.Gemma
            && fields.Text("hidden_activation") is { } hiddenActivation
            && hiddenActivation != actName
        )
            warnings.Add(
                $"hidden_activation \"{hiddenActivation}\" differs from hidden_act \"{actName}\"; "
                    + "transformers' GemmaMLP uses hidden_act, and so does Explorer."
            );

        // Rotary: theta and scaling, from rope_theta / rope_scaling or (transformers 5) rope_parameters.
        var (theta, scaling) = RopeReader.Read(root, fields, errors, rules.DefaultRopeTheta, context);
        if (fields.Real("partial_rotary_factor", 1) is var partial && partial != 1)
            errors.Add(
                new(
                    "partial_rotary_factor",
                    partial.ToString("R"),
                    "must be 1: rotary embeddings over part of each head are not supported"
                )
            );

        // Attention biases, as each family's attention builds its projections.
        var attentionBias = rules.Family switch
        {
            ModelFamily.Qwen2 => AttentionBias.QueryKeyValue,
            ModelFamily.Mistral or ModelFamily.Phi3 => AttentionBias.None,
            _ => fields.Flag("attention_bias", false) ? AttentionBias.All : AttentionBias.None,
        };
        var mlpBias = rules.Family == ModelFamily.Llama && fields.Flag("mlp_bias", false);

        // The sliding window, and which layers use it.
        int? window = null;
        var firstSliding = 0;
        switch (rules.Family)
        {
            case ModelFamily.Mistral or ModelFamily.Phi3:
                window = fields.OptionalInt("sliding_window", rules.DefaultWindow);
                break;
            case ModelFamily.Qwen2 or ModelFamily.Qwen3:
            {
                var configured = fields.OptionalInt("sliding_window", rules.DefaultWindow);
                window = fields.Flag("use_sliding_window", false) ? configured : null;
                firstSliding = fields.Int("max_window_layers", 28);
                if (root.TryGetProperty("layer_types", out var types) && types.ValueKind != JsonValueKind.Null)
                    (window, firstSliding) = LayerTypes(types, layers, configured, errors);
                else if (window is not null && firstSliding >= layers)
                    window = null; // no layer reaches max_window_layers: every layer attends fully
                break;
            }
        }
        if (window is < 1)
            errors.Add(new("sliding_window", window.ToString()!, "must be at least 1 (or null for full attention)"));

        var headDim = fields.OptionalInt("head_dim", rules.DefaultHeadDim);
        var name = fields.Text("_name_or_path") is { Length: > 0 } n ? n.TrimEnd('/').Split('/')[^1] : fallbackName;
        var spec = new ModelSpec(
            Name: string.IsNullOrWhiteSpace(name) ? "config" : name,
            Layers: layers,
            HiddenSize: hidden,
            IntermediateSize: fields.Int("intermediate_size", 0),
            AttentionHeads: heads,
            KeyValueHeads: fields.Int("num_key_value_heads", heads),
            VocabularySize: fields.Int("vocab_size", 0),
            ContextLength: context,
            RopeTheta: theta,
            NormEpsilon: fields.Real("rms_norm_eps", rules.DefaultEpsilon),
            TiedEmbeddings: fields.Flag("tie_word_embeddings", rules.DefaultTied),
            NormPlacement: rules.Family == ModelFamily.Olmo2 ? NormPlacement.BranchOutput : NormPlacement.Pre,
            Family: rules.Family,
            // A head_dim equal to hidden / heads is the default spelled out: kept implicit so the spec reads the same.
            HeadDimension: headDim is { } hd && !(heads > 0 && hidden % heads == 0 && hd == hidden / heads) ? hd : null,
            Activation: activation,
            NormScale: rules.Family switch
            {
                ModelFamily.Gemma => NormScale.OnePlusWeight,
                ModelFamily.Olmo2 => NormScale.WeightInFloat32,
                _ => NormScale.Weight,
            },
            AttentionBias: attentionBias,
            MlpBias: mlpBias,
            QkNorm: rules.Family switch
            {
                ModelFamily.Qwen3 => QkNorm.PerHead,
                ModelFamily.Olmo2 => QkNorm.AcrossHeads,
                _ => QkNorm.None,
            },
            RopeScaling: scaling,
            SlidingWindow: window,
            FirstSlidingLayer: window is null ? 0 : firstSliding,
            ScaleEmbedding: rules.Family == ModelFamily.Gemma
        );

        if (errors.Count > 0)
            return new(null, errors, warnings);
        var specErrors = SpecValidator.Validate(spec);
        return specErrors.Count > 0 ? new(null, specErrors, warnings) : new(spec, [], warnings);
    }

    /// <summary>
    /// An explicit layer_types list (Qwen2, Qwen3): full attention in the first layers and the window in the rest is
    /// what a spec holds (max_window_layers); any other pattern is refused.
    /// </summary>
    private static (int? Window, int FirstSliding) LayerTypes(
        JsonElement types,
        int layers,
        int? window,
        List<SpecError> errors
    )
    {
        var values =
            types.ValueKind == JsonValueKind.Array
                ? types
                    .EnumerateArray()
                    .Select(t => t.ValueKind == JsonValueKind.String ? t.GetString() : t.GetRawText())
                    .ToArray()
                : null;
        if (
            values is null
            || values.Length != layers
            || values.Any(v => v is not ("full_attention" or "sliding_attention"))
        )
        {
            errors.Add(
                new(
                    "layer_types",
                    Short(types),
                    $"must list \"full_attention\" or \"sliding_attention\" for each of the {layers} layers"
                )
            );
            return (null, 0);
        }
        var first = Array.IndexOf(values, "sliding_attention");
        if (first < 0)
            return (null, 0);
        if (values.Skip(first).Any(v => v != "sliding_attention"))
        {
            errors.Add(
                new(
                    "layer_types",
                    Short(types),
                    "must be full attention in the first layers and sliding in the rest; other patterns "
                        + "are not supported"
                )
            );
            return (null, 0);
        }
        if (window is null)
            errors.Add(new("sliding_window", "null", "must be set when layer_types has sliding_attention layers"));
        return (window, first);
    }

    internal static string Short(JsonElement value)
    {
        var text = value.GetRawText();
        return text.Length <= 80 ? text : text[..77] + "...";
    }

    private static HfConfigResult Fail(string field, string value, string message) =>
        new(null, [new SpecError(field, value, message)], []);
}
