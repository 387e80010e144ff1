using Explorer.Core.Specs;

namespace Explorer.Model.Hosting;

public enum ModelState { Loading, Ready, Failed }

/// <summary>What the host says about one model, for a banner or a picker; a loaded checkpoint says where its layers live.</summary>
public sealed record ModelStatus(string Name, ModelState State, double Progress, string Message, ModelSpec? Spec, string Source, Placement? Placement = null)
{
    public bool Streamed => Placement?.Streamed == true;
}
