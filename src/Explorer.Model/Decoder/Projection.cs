using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>
/// A bias-free linear map, weight stored [out, in] as Hugging Face checkpoints store it. Unlike TorchSharp's
/// <c>nn.Linear</c> it does not initialise its weight: every decoder weight is either filled from a seed
/// (<see cref="Decoder.Create"/>) or read from a checkpoint, and a 7B model's Kaiming init alone took over a minute.
/// </summary>
public sealed class Projection : nn.Module<Tensor, Tensor>
{
    public Projection(string name, long inFeatures, long outFeatures, Device device, ScalarType dtype) : base(name)
    {
        register_parameter("weight", new Parameter(torch.empty(outFeatures, inFeatures, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>x (…, in) → (…, out).</summary>
    public override Tensor forward(Tensor x) => nn.functional.linear(x, Weight);
}
