using TorchSharp;
using Explorer.Core.Specs;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>SwiGLU: down(silu(gate(x)) · up(x)); or, for the GELU variant, down(gelu(up(x))).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Projection? _gate;
    private readonly Projection _up, _down;

    public FeedForward(string name, long hidden, long intermediate, FfnKind kind, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        if (kind == FfnKind.SwiGlu)
        {
            _gate = new Projection("gate_proj", hidden, intermediate, device, dtype);
            register_module("gate_proj", _gate);
        }
        _up = new Projection("up_proj", hidden, intermediate, device, dtype);
        _down = new Projection("down_proj", intermediate, hidden, device, dtype);
        register_module("up_proj", _up);
        register_module("down_proj", _down);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inner = _gate is null
            ? nn.functional.gelu(_up.forward(x))
            : nn.functional.silu(_gate.forward(x)) * _up.forward(x);
        return _down.forward(inner).MoveToOuterDisposeScope();
    }
}
