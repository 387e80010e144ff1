using Explorer.Core.Parallel;
using Explorer.Web.Views;

namespace Explorer.Web.Components.Pages.Pipeline;

/// <summary>
/// The parallel panel's search in the Pipeline page's URL: <c>gpu, gpus, batch, engine, overlap, attention</c> (overlap
/// a comma list of grad, param and tp; attention flash or unfused), each written only when it differs from the panel's
/// default. Read leniently, as
/// <see cref="PipelineQuery"/> is: a value that cannot be used is left out with a note naming what is allowed.
/// </summary>
public static class ParallelPanelQuery
{
    public static readonly IReadOnlyList<string> Keys = ["gpu", "gpus", "batch", "engine", "overlap", "attention"];

    private static readonly string[] Engines = ["megatron", "torchtitan", "deepspeed", "any"];

    /// <summary>The URL parameters for the panel's search as it stands: null where it is the default.</summary>
    public static IReadOnlyDictionary<string, object?> Write(ParallelPlannerView v)
    {
        var defaults = new ParallelPlannerView();
        var overlap = new[]
        {
            (v.Overlap.GradReduce, "grad"),
            (v.Overlap.ParamGather, "param"),
            (v.Overlap.TensorParallel, "tp"),
        }
            .Where(o => o.Item1)
            .Select(o => o.Item2)
            .ToArray();
        return new Dictionary<string, object?>
        {
            ["gpu"] = v.GpuKey != defaults.GpuKey ? v.GpuKey : null,
            ["gpus"] = v.Gpus != defaults.Gpus ? v.Gpus : null,
            ["batch"] = v.GlobalBatch != defaults.GlobalBatch ? v.GlobalBatch : null,
            ["engine"] = v.Engine != defaults.Engine ? v.Engine ?? "any" : null,
            ["overlap"] = overlap.Length > 0 ? string.Join(",", overlap) : null,
            ["attention"] =
                v.FlashAttention != defaults.FlashAttention ? (v.FlashAttention ? "flash" : "unfused") : null,
        };
    }

    /// <summary>Applies what <paramref name="query"/> holds to the panel; returns the notes on the values left
    /// out.</summary>
    public static IReadOnlyList<string> Read(ParallelPlannerView v, Func<string, string?> query)
    {
        var notes = new QueryNotes();
        string? Value(string key) => query(key) is { Length: > 0 } value ? value.Trim() : null;
        if (Value("gpu") is { } gpu)
        {
            if (Gpu.Keys.Contains(gpu, StringComparer.OrdinalIgnoreCase))
                v.SelectGpu(Gpu.Get(gpu).Key);
            else
                notes.Note("gpu", gpu, $"use one of {string.Join(", ", Gpu.Keys)}");
        }
        if (notes.Int("gpus", Value("gpus"), 1, ParallelRules.MaxGpus) is { } gpus)
            v.Gpus = gpus;
        if (notes.Int("batch", Value("batch"), 1, ParallelRules.MaxGlobalBatch) is { } batch)
            v.GlobalBatch = batch;
        if (Value("engine") is { } engine)
        {
            if (Engines.Contains(engine, StringComparer.OrdinalIgnoreCase))
                v.Engine = engine.Equals("any", StringComparison.OrdinalIgnoreCase) ? null : engine.ToLowerInvariant();
            else
                notes.Note("engine", engine, $"use one of {string.Join(", ", Engines)}");
        }
        if (Value("overlap") is { } list)
        {
            var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(p => p.ToLowerInvariant())
                .ToArray();
            if (parts.Length is > 0 and <= 3 && parts.All(p => p is "grad" or "param" or "tp"))
            {
                // Megatron's rule, as the panel's switches keep it: the weight gather needs the gradient overlap.
                var param = parts.Contains("param");
                v.Overlap = new CommOverlap(parts.Contains("grad") || param, param, parts.Contains("tp"));
            }
            else
                notes.Note("overlap", list, "a comma list of grad, param and tp");
        }
        if (Value("attention") is { } attention)
        {
            if (attention.ToLowerInvariant() is "flash" or "unfused")
                v.FlashAttention = ParallelConfig.ParseAttentionBackend(attention);
            else
                notes.Note("attention", attention, "flash or unfused");
        }
        return notes.Notes;
    }
}
