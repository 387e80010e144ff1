using Explorer.Core.Specs;

namespace Explorer.Model.Hosting;

public enum ModelState
{
    Loading,
    Ready,
    Failed,
}

/// <summary>What the host says about one model, for a banner or a picker; a loaded checkpoint says where its layers
/// live.</summary>
/// <param name="Warnings">What reading the checkpoint's config.json noticed and did not refuse.</param>
public sealed record ModelStatus(
    string Name,
    ModelState State,
    double Progress,
    string Message,
    ModelSpec? Spec,
    string Source,
    Placement? Placement = null,
    IReadOnlyList<string>? Warnings = null
)
{
    public bool Streamed => Placement?.Streamed == true;
}
