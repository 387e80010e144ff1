namespace Explorer.Core.Specs;

/// <summary>One thing wrong with a spec: which field, its value, and what is allowed.</summary>
public sealed record SpecError(string Field, string Value, string Message)
{
    public override string ToString() => $"{Field} = {Value}: {Message}";
}

/// <summary>Thrown when a spec is used that <see cref="SpecValidator"/> rejects.</summary>
public sealed class SpecValidationException(IReadOnlyList<SpecError> errors)
    : Exception("Invalid model spec: " + string.Join("; ", errors))
{
    public IReadOnlyList<SpecError> Errors { get; } = errors;
}

/// <summary>Checks that a spec describes a decoder that can exist, within bounds the tool can account for.</summary>
public static class SpecValidator
{
    // Bounds well beyond any published dense decoder, tight enough that every count fits in a long.
    public const int MaxLayers = 1024;
    public const int MaxHiddenSize = 131072;
    public const int MaxIntermediateSize = 1048576;
    public const int MaxHeads = 1024;
    public const int MaxHeadDim = 4096;
    public const int MaxVocabularySize = 4_194_304;
    public const int MaxContextLength = 4_194_304;

    /// <summary>Every error in the spec; empty when it is valid.</summary>
    public static IReadOnlyList<SpecError> Validate(ModelSpec spec)
    {
        var errors = new List<SpecError>();
        void Range(string field, int value, int max)
        {
            if (value < 1 || value > max)
                errors.Add(new(field, value.ToString(), $"must be between 1 and {max:N0}"));
        }

        if (string.IsNullOrWhiteSpace(spec.Name))
            errors.Add(new("name", $"'{spec.Name}'", "must not be empty"));
        Range("num_hidden_layers", spec.Layers, MaxLayers);
        Range("hidden_size", spec.HiddenSize, MaxHiddenSize);
        Range("intermediate_size", spec.IntermediateSize, MaxIntermediateSize);
        Range("num_attention_heads", spec.AttentionHeads, MaxHeads);
        Range("num_key_value_heads", spec.KeyValueHeads, MaxHeads);
        Range("vocab_size", spec.VocabularySize, MaxVocabularySize);
        Range("max_position_embeddings", spec.ContextLength, MaxContextLength);

        if (spec.HeadDimension is { } headDim)
        {
            if (headDim < 2 || headDim > MaxHeadDim)
                errors.Add(new("head_dim", headDim.ToString(), $"must be between 2 and {MaxHeadDim:N0}"));
            else if (headDim % 2 != 0)
                errors.Add(new("head_dim", headDim.ToString(), "must be even for rotary embeddings"));
        }
        else if (spec.HiddenSize > 0 && spec.AttentionHeads > 0)
        {
            if (spec.HiddenSize % spec.AttentionHeads != 0)
                errors.Add(
                    new(
                        "num_attention_heads",
                        spec.AttentionHeads.ToString(),
                        $"must divide hidden_size {spec.HiddenSize} (it leaves a remainder of "
                            + $"{spec.HiddenSize % spec.AttentionHeads})"
                    )
                );
            else if (spec.HeadDim % 2 != 0)
                errors.Add(
                    new(
                        "num_attention_heads",
                        spec.AttentionHeads.ToString(),
                        $"gives head_dim {spec.HeadDim}, which must be even for rotary embeddings"
                    )
                );
        }
        if (spec.AttentionHeads > 0 && spec.KeyValueHeads > 0 && spec.AttentionHeads % spec.KeyValueHeads != 0)
            errors.Add(
                new(
                    "num_key_value_heads",
                    spec.KeyValueHeads.ToString(),
                    $"must divide num_attention_heads {spec.AttentionHeads}"
                )
            );
        if (!(spec.RopeTheta > 0) || double.IsInfinity(spec.RopeTheta))
            errors.Add(new("rope_theta", spec.RopeTheta.ToString("R"), "must be a positive, finite number"));
        if (!(spec.NormEpsilon > 0 && spec.NormEpsilon < 1))
            errors.Add(new("rms_norm_eps", spec.NormEpsilon.ToString("R"), "must be greater than 0 and less than 1"));
        if (!Enum.IsDefined(spec.NormPlacement))
            errors.Add(new("norm_placement", spec.NormPlacement.ToString(), "must be Pre, Post or BranchOutput"));
        if (!Enum.IsDefined(spec.FfnKind))
            errors.Add(new("ffn_kind", spec.FfnKind.ToString(), "must be SwiGlu or Gelu"));
        if (!Enum.IsDefined(spec.Family))
            errors.Add(
                new(
                    "family",
                    spec.Family.ToString(),
                    $"must be one of {string.Join(", ", Enum.GetNames<ModelFamily>())}"
                )
            );
        if (!Enum.IsDefined(spec.Activation))
            errors.Add(new("hidden_act", spec.Activation.ToString(), "must be Silu, Gelu or GeluTanh"));
        if (!Enum.IsDefined(spec.NormScale) || !Enum.IsDefined(spec.AttentionBias) || !Enum.IsDefined(spec.QkNorm))
            errors.Add(
                new(
                    "design",
                    $"{spec.NormScale}, {spec.AttentionBias}, {spec.QkNorm}",
                    "names a norm scale, attention bias or q/k norm that does not exist"
                )
            );
        if (spec.SlidingWindow is < 1)
            errors.Add(
                new("sliding_window", spec.SlidingWindow.ToString()!, "must be at least 1 (or null for full attention)")
            );
        if (spec.FirstSlidingLayer < 0)
            errors.Add(new("max_window_layers", spec.FirstSlidingLayer.ToString(), "must not be negative"));
        if (spec.FusedProjections && spec.FfnKind != FfnKind.SwiGlu)
            errors.Add(new("ffn_kind", spec.FfnKind.ToString(), "must be SwiGlu for Phi-3's fused gate_up_proj"));
        if (spec.RopeScaling is { } scaling)
        {
            if (!Enum.IsDefined(scaling.Kind))
                errors.Add(new("rope_scaling.rope_type", scaling.Kind.ToString(), "must be linear, dynamic or llama3"));
            if (!(scaling.Factor >= 1) || double.IsInfinity(scaling.Factor))
                errors.Add(
                    new("rope_scaling.factor", scaling.Factor.ToString("R"), "must be a finite number of at least 1")
                );
            if (scaling.Kind == RopeScalingKind.Llama3)
            {
                if (
                    !(scaling.LowFrequencyFactor > 0)
                    || !(scaling.HighFrequencyFactor > scaling.LowFrequencyFactor)
                    || double.IsInfinity(scaling.HighFrequencyFactor)
                )
                    errors.Add(
                        new(
                            "rope_scaling.high_freq_factor",
                            $"{scaling.HighFrequencyFactor:R} (low_freq_factor {scaling.LowFrequencyFactor:R})",
                            "must be finite and greater than low_freq_factor, which must be greater than 0"
                        )
                    );
                if (scaling.OriginalContext < 1)
                    errors.Add(
                        new(
                            "rope_scaling.original_max_position_embeddings",
                            scaling.OriginalContext.ToString(),
                            "must be at least 1"
                        )
                    );
            }
        }
        return errors;
    }

    /// <summary>Returns the spec if valid, otherwise throws with every error.</summary>
    public static ModelSpec EnsureValid(ModelSpec spec)
    {
        var errors = Validate(spec);
        return errors.Count == 0 ? spec : throw new SpecValidationException(errors);
    }
}
