using System.Text.Json;

namespace Explorer.Core.Specs;

/// <summary>The outcome of reading a config.json: a spec when it could be read, and what was noticed.</summary>
public sealed record HfConfigResult(ModelSpec? Spec, IReadOnlyList<SpecError> Errors, IReadOnlyList<string> Warnings)
{
    public bool Succeeded => Spec is not null && Errors.Count == 0;
}

/// <summary>
/// Reads a Hugging Face <c>config.json</c> of a <c>LlamaForCausalLM</c> model (DeepSeek LLM uses that class)
/// into a <see cref="ModelSpec"/>. Missing or malformed fields are errors; fields it does not know are warnings.
/// </summary>
public static class HfConfigReader
{
    /// <summary>Largest config.json accepted; real ones are about 1 KB.</summary>
    public const int MaxBytes = 1 << 20;

    private static readonly string[] Required =
        ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"];

    // Fields of LlamaConfig that do not change the macro shape, accepted silently.
    private static readonly HashSet<string> Ignored =
    [
        "architectures", "model_type", "hidden_act", "num_key_value_heads", "max_position_embeddings",
        "rope_theta", "rms_norm_eps", "tie_word_embeddings", "head_dim", "attention_bias", "mlp_bias",
        "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "pretraining_tp", "use_cache",
        "torch_dtype", "dtype", "transformers_version", "rope_scaling", "attention_dropout", "_name_or_path",
        "auto_map", "quantization_config",
    ];

    /// <summary>Reads a config file from disk; a name for the spec comes from its folder.</summary>
    public static HfConfigResult ReadFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
            return Fail("file", path, "does not exist");
        if (info.Length > MaxBytes)
            return Fail("file", path, $"is {info.Length:N0} bytes; a config.json may be at most {MaxBytes:N0} bytes");
        var name = info.Directory?.Name is { Length: > 0 } dir && info.Name == "config.json" ? dir : Path.GetFileNameWithoutExtension(path);
        return Read(File.ReadAllBytes(path), name);
    }

    /// <summary>Reads config.json bytes (UTF-8).</summary>
    public static HfConfigResult Read(ReadOnlySpan<byte> utf8Json, string fallbackName)
    {
        if (utf8Json.Length > MaxBytes)
            return Fail("config.json", $"{utf8Json.Length:N0} bytes", $"is larger than the {MaxBytes:N0} bytes allowed");
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
            return Fail("config.json", "(not UTF-8)", "is not valid UTF-8 text; save it as UTF-8");
        try
        {
            using var doc = JsonDocument.Parse(utf8Json.ToArray(), new JsonDocumentOptions { MaxDepth = 32 });
            return Read(doc.RootElement, fallbackName);
        }
        catch (JsonException e)
        {
            return Fail("config.json", "(not JSON)",
                $"is not valid JSON: {e.Message.Split(" Path:")[0]} (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }
    }

    /// <summary>Reads config.json text.</summary>
    public static HfConfigResult Read(string json, string fallbackName) =>
        Read(System.Text.Encoding.UTF8.GetBytes(json), fallbackName);

    private static HfConfigResult Read(JsonElement root, string fallbackName)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return Fail("config.json", root.ValueKind.ToString(), "must be a JSON object of LlamaConfig fields");

        var errors = new List<SpecError>();
        var warnings = new List<string>();

        foreach (var field in Required)
            if (!root.TryGetProperty(field, out _))
                errors.Add(new(field, "(missing)", "is required"));
        foreach (var property in root.EnumerateObject())
            if (!Required.Contains(property.Name) && !Ignored.Contains(property.Name))
                warnings.Add($"Unknown field '{property.Name}' ignored.");

        int Int(string field, int fallback)
        {
            if (!root.TryGetProperty(field, out var e) || e.ValueKind == JsonValueKind.Null)
                return fallback;
            if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v))
                return v;
            errors.Add(new(field, e.GetRawText(), "must be a whole number"));
            return fallback;
        }
        double Real(string field, double fallback)
        {
            if (!root.TryGetProperty(field, out var e) || e.ValueKind == JsonValueKind.Null)
                return fallback;
            if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var v))
                return v;
            errors.Add(new(field, e.GetRawText(), "must be a number"));
            return fallback;
        }
        bool Flag(string field, bool fallback)
        {
            if (!root.TryGetProperty(field, out var e) || e.ValueKind == JsonValueKind.Null)
                return fallback;
            if (e.ValueKind is JsonValueKind.True or JsonValueKind.False)
                return e.GetBoolean();
            errors.Add(new(field, e.GetRawText(), "must be true or false"));
            return fallback;
        }
        string? Text(string field)
        {
            if (!root.TryGetProperty(field, out var e) || e.ValueKind == JsonValueKind.Null)
                return null;
            if (e.ValueKind == JsonValueKind.String)
                return e.GetString();
            errors.Add(new(field, e.GetRawText(), "must be a string"));
            return null;
        }

        if (root.TryGetProperty("architectures", out var archs))
        {
            var names = archs.ValueKind == JsonValueKind.Array
                ? archs.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String ? a.GetString() : a.GetRawText()).ToArray()
                : [archs.GetRawText()];
            if (!names.Contains("LlamaForCausalLM"))
                errors.Add(new("architectures", archs.GetRawText(), "must include \"LlamaForCausalLM\" (the class DeepSeek LLM and LLaMA use)"));
        }
        if (Text("model_type") is { } modelType && modelType != "llama")
            errors.Add(new("model_type", $"\"{modelType}\"", "must be \"llama\""));
        if (Text("hidden_act") is { } act && act != "silu")
            errors.Add(new("hidden_act", $"\"{act}\"", "must be \"silu\" (SwiGLU)"));
        if (Flag("attention_bias", false))
            errors.Add(new("attention_bias", "true", "must be false: Explorer models decoders without biases"));
        if (Flag("mlp_bias", false))
            errors.Add(new("mlp_bias", "true", "must be false: Explorer models decoders without biases"));
        if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
            warnings.Add($"rope_scaling {scaling.GetRawText()} does not change the accounting and is ignored.");

        var hidden = Int("hidden_size", 0);
        var heads = Int("num_attention_heads", 0);
        var name = Text("_name_or_path") is { Length: > 0 } n ? n.TrimEnd('/').Split('/')[^1] : fallbackName;
        var spec = new ModelSpec(
            Name: string.IsNullOrWhiteSpace(name) ? "config" : name,
            Layers: Int("num_hidden_layers", 0),
            HiddenSize: hidden,
            IntermediateSize: Int("intermediate_size", 0),
            AttentionHeads: heads,
            KeyValueHeads: Int("num_key_value_heads", heads),
            VocabularySize: Int("vocab_size", 0),
            ContextLength: Int("max_position_embeddings", 4096),
            RopeTheta: Real("rope_theta", 10000),
            NormEpsilon: Real("rms_norm_eps", 1e-6),
            TiedEmbeddings: Flag("tie_word_embeddings", false));

        var headDim = Int("head_dim", 0);
        if (headDim != 0 && heads > 0 && headDim * heads != hidden)
            errors.Add(new("head_dim", headDim.ToString(),
                $"must equal hidden_size / num_attention_heads = {hidden} / {heads}; decoupled head sizes are not supported"));

        if (errors.Count > 0)
            return new(null, errors, warnings);
        var specErrors = SpecValidator.Validate(spec);
        return specErrors.Count > 0 ? new(null, specErrors, warnings) : new(spec, [], warnings);
    }

    private static HfConfigResult Fail(string field, string value, string message) =>
        new(null, [new SpecError(field, value, message)], []);
}
