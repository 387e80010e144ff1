using System.Text.Json;

namespace Explorer.Core.Specs;

/// <summary>Typed reads of a config.json object's fields; a field of the wrong type is an error naming it and its
/// value.</summary>
internal sealed class JsonFields(JsonElement root, List<SpecError> errors)
{
    public JsonElement Root => root;

    private JsonElement? Get(string field) =>
        root.TryGetProperty(field, out var e) && e.ValueKind != JsonValueKind.Null ? e : null;

    public int Int(string field, int fallback) => OptionalInt(field, fallback) ?? fallback;

    /// <summary>The field's whole number; <paramref name="fallback"/> when absent; null when it is JSON null.</summary>
    public int? OptionalInt(string field, int? fallback)
    {
        if (!root.TryGetProperty(field, out var e))
            return fallback;
        if (e.ValueKind == JsonValueKind.Null)
            return null;
        return Whole(field, e) ?? fallback;
    }

    private int? Whole(string field, JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v))
            return v;
        // 8.0 is written by some exporters for a whole number.
        if (
            e.ValueKind == JsonValueKind.Number
            && e.TryGetDouble(out var d)
            && d == Math.Floor(d)
            && Math.Abs(d) <= int.MaxValue
        )
            return (int)d;
        errors.Add(new(field, e.GetRawText(), "must be a whole number"));
        return null;
    }

    public double Real(string field, double fallback) => Real(root, field, fallback, errors);

    public static double Real(
        JsonElement obj,
        string field,
        double fallback,
        List<SpecError> errors,
        string? prefix = null
    )
    {
        if (!obj.TryGetProperty(field, out var e) || e.ValueKind == JsonValueKind.Null)
            return fallback;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out var v))
            return v;
        errors.Add(new(prefix + field, e.GetRawText(), "must be a number"));
        return fallback;
    }

    public bool Flag(string field, bool fallback)
    {
        if (Get(field) is not { } e)
            return fallback;
        if (e.ValueKind is JsonValueKind.True or JsonValueKind.False)
            return e.GetBoolean();
        errors.Add(new(field, e.GetRawText(), "must be true or false"));
        return fallback;
    }

    public string? Text(string field)
    {
        if (Get(field) is not { } e)
            return null;
        if (e.ValueKind == JsonValueKind.String)
            return e.GetString();
        errors.Add(new(field, e.GetRawText(), "must be a string"));
        return null;
    }
}
