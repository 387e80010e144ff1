using Explorer.Core.Specs;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Hosting;

/// <summary>
/// The trained mini models that ship with the app. They live in the repository under
/// <c>src/Explorer.Model/Defaults/NAME</c> (config.json, bf16 model.safetensors, the tokenizer marker and
/// <see cref="RecordFile"/>, what <c>explorer train-defaults</c> wrote) and are copied next to the assemblies as
/// <c>defaults/NAME</c>.
/// </summary>
public static class TrainedDefaults
{
    public const string FolderName = "defaults";

    /// <summary>How the model was trained and what the probe measured on the shipped file.</summary>
    public const string RecordFile = "training.json";

    /// <summary>Where the shipped checkpoints are at run time.</summary>
    public static string Folder { get; } = Path.Combine(AppContext.BaseDirectory, FolderName);

    /// <summary>The shipped checkpoint folder of a mini preset, or null when the build has none.</summary>
    public static string? Find(ModelSpec spec, string? folder = null)
    {
        var directory = Path.Combine(folder ?? Folder, spec.Name);
        return File.Exists(Path.Combine(directory, "config.json")) ? directory : null;
    }

    /// <summary>
    /// Loads the shipped weights of a mini preset in fp32. A checkpoint whose shape is not the preset's (trained
    /// before the preset changed) is refused with what differs, rather than shown under the preset's name.
    /// </summary>
    public static LiveModel Load(ModelSpec spec, string device = "cpu", string? folder = null)
    {
        var directory = Find(spec, folder)
            ?? throw new CheckpointException(
                $"No trained {spec.Name} in {folder ?? Folder}; train it with `explorer train-defaults`."
            );
        var model = LiveModel.FromCheckpoint(
            directory,
            device,
            ScalarType.Float32,
            source: $"trained ({FolderName}/{spec.Name})"
        );
        var shipped = model.Spec with { Name = spec.Name };
        if (shipped != spec)
        {
            model.Dispose();
            throw new CheckpointException(
                $"{directory} holds a {Describe(model.Spec)} model but {spec.Name} is {Describe(spec)}; "
                    + "retrain it with `explorer train-defaults`."
            );
        }
        return model;
    }

    private static string Describe(ModelSpec s) =>
        $"{s.Layers} × d{s.HiddenSize} (FFN {s.IntermediateSize}, {s.AttentionHeads}/{s.KeyValueHeads} "
        + $"heads, vocab {s.VocabularySize})";
}
