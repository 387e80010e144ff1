using System.Text.Json;

namespace Explorer.Core.Specs;

/// <summary>
/// Reads rotary settings: <c>rope_theta</c> and <c>rope_scaling</c> (transformers 4), or <c>rope_parameters</c>
/// (transformers 5, which holds both). Scalings that change the forward are read exactly or refused, never ignored.
/// </summary>
internal static class RopeReader
{
    private const string Supported = "\"default\", \"linear\", \"dynamic\" or \"llama3\"";

    public static (double Theta, RopeScaling? Scaling) Read(
        JsonElement root,
        JsonFields fields,
        List<SpecError> errors,
        double defaultTheta,
        int context
    )
    {
        var theta = fields.Real("rope_theta", defaultTheta);
        if (root.TryGetProperty("rope_parameters", out var parameters) && parameters.ValueKind != JsonValueKind.Null)
        {
            if (parameters.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new("rope_parameters", HfConfigReader.Short(parameters), "must be an object or null"));
                return (theta, null);
            }
            theta = JsonFields.Real(parameters, "rope_theta", theta, errors, "rope_parameters.");
            if (root.TryGetProperty("rope_scaling", out var both) && both.ValueKind != JsonValueKind.Null)
                errors.Add(
                    new(
                        "rope_scaling",
                        HfConfigReader.Short(both),
                        "must not be set beside rope_parameters (which holds the scaling)"
                    )
                );
            return (theta, Scaling(parameters, "rope_parameters", errors, context));
        }
        if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
        {
            if (scaling.ValueKind != JsonValueKind.Object)
            {
                errors.Add(new("rope_scaling", HfConfigReader.Short(scaling), "must be an object or null"));
                return (theta, null);
            }
            return (theta, Scaling(scaling, "rope_scaling", errors, context));
        }
        return (theta, null);
    }

    private static RopeScaling? Scaling(JsonElement obj, string field, List<SpecError> errors, int context)
    {
        // transformers: rope_type, or "type" in older configs.
        var typeElement =
            obj.TryGetProperty("rope_type", out var t) ? t
            : obj.TryGetProperty("type", out var old) ? old
            : default;
        if (typeElement.ValueKind != JsonValueKind.String)
        {
            if (field == "rope_parameters" && typeElement.ValueKind == JsonValueKind.Undefined)
                return null; // rope_parameters with only rope_theta: the default rotary
            errors.Add(
                new(
                    $"{field}.rope_type",
                    typeElement.ValueKind == JsonValueKind.Undefined ? "(missing)" : typeElement.GetRawText(),
                    $"must be {Supported}"
                )
            );
            return null;
        }
        var type = typeElement.GetString();
        double Number(string key, bool required = true)
        {
            if (obj.TryGetProperty(key, out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var v))
                return v;
            if (required || obj.TryGetProperty(key, out _))
                errors.Add(
                    new(
                        $"{field}.{key}",
                        obj.TryGetProperty(key, out var bad) ? bad.GetRawText() : "(missing)",
                        $"must be a number for rope_type \"{type}\""
                    )
                );
            return double.NaN;
        }
        switch (type)
        {
            case "default":
                return null;
            case "linear":
                return new RopeScaling(RopeScalingKind.Linear, Number("factor"));
            case "dynamic":
                return new RopeScaling(RopeScalingKind.Dynamic, Number("factor"), OriginalContext: context);
            case "llama3":
            {
                var original = Number("original_max_position_embeddings");
                if (
                    !double.IsNaN(original)
                    && (original != Math.Floor(original) || original < 1 || original > int.MaxValue)
                )
                    errors.Add(
                        new(
                            $"{field}.original_max_position_embeddings",
                            original.ToString("R"),
                            "must be a whole number of at least 1"
                        )
                    );
                return new RopeScaling(
                    RopeScalingKind.Llama3,
                    Number("factor"),
                    Number("low_freq_factor"),
                    Number("high_freq_factor"),
                    double.IsNaN(original) || original < 1 || original > int.MaxValue ? 1 : (int)original
                );
            }
            default:
                errors.Add(
                    new(
                        $"{field}.rope_type",
                        $"\"{type}\"",
                        $"is not supported (it changes every rotary frequency); supported: {Supported}"
                    )
                );
                return null;
        }
    }
}
