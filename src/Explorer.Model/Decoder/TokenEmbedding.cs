using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Explorer.Model.Decoder;

/// <summary>The token embedding table (vocab, d). A plain parameter so that it can be built on the meta device.</summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{

    public TokenEmbedding(string name, long vocabulary, long hidden, Device device, ScalarType dtype = ScalarType.Float32) : base(name)
    {
        register_parameter("weight", new Parameter(torch.empty(vocabulary, hidden, dtype, device)));
    }

    // Looked up each time: Module.to() replaces registered parameters.
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>tokens (B, T) int64 → (B, T, d).</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var rows = Weight.index_select(0, tokens.reshape(-1));
        return rows.reshape(tokens.shape[0], tokens.shape[1], Weight.shape[1]).MoveToOuterDisposeScope();
    }
}
