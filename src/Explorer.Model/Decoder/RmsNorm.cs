using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>y = x · rsqrt(mean(x²) + eps) · w, computed in fp32 as Hugging Face's LlamaRMSNorm does.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly double _eps;

    public RmsNorm(string name, long dim, double eps, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        _eps = eps;
        register_parameter("weight", new Parameter(torch.ones(dim, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x32 = x.to(ScalarType.Float32);
        var normed = x32 * torch.rsqrt(x32.pow(2).mean([-1], keepdim: true) + _eps);
        return (Weight * normed.to(x.dtype)).MoveToOuterDisposeScope();
    }
}
