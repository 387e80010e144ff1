using Explorer.Core.Specs;
using Explorer.Model.Hosting;

namespace Explorer.Cli;

/// <summary>Turns --model / --weights into a live model, with messages that say what to do instead.</summary>
public static class ModelArguments
{
    /// <param name="warnings">Where what config.json held and was ignored is said (standard error when not
    /// given).</param>
    public static LiveModel Open(
        string? model,
        string? weights,
        string device,
        bool stream = false,
        TextWriter? warnings = null
    )
    {
        if (!string.IsNullOrWhiteSpace(weights))
        {
            if (!Directory.Exists(weights))
                throw new ArgumentException($"--weights {weights}: no such folder.");
            var live = LiveModel.FromCheckpoint(weights, stream ? "cpu" : device, streamed: stream);
            // What config.json held that the family's class does not read: said, so nothing is ignored silently.
            foreach (var warning in live.ConfigWarnings)
                (warnings ?? Console.Error).WriteLine($"warning: {warning}");
            return live;
        }
        if (stream)
            throw new ArgumentException("--stream reads a checkpoint's layers from its files: give --weights DIR.");
        if (string.IsNullOrWhiteSpace(model))
            throw new ArgumentException(
                $"Give --model NAME ({string.Join(", ", MiniPresets.All.Select(s => s.Name))}) or --weights DIR."
            );
        if (MiniPresets.TryGet(model, out var mini))
            return LiveModel.Mini(mini, device: device);
        if (ModelPresets.TryGet(model, out _))
            throw new ArgumentException(
                $"{model} is a published shape without weights here; run it with --weights DIR (a "
                    + "Hugging Face checkpoint folder)."
            );
        throw new ArgumentException(
            $"Unknown model '{model}'. Runnable presets: "
                + $"{string.Join(", ", MiniPresets.All.Select(s => s.Name))}; or use --weights DIR."
        );
    }
}
