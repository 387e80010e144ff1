using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>Small shapes that run in milliseconds.</summary>
internal static class TestModels
{
    public static readonly ModelSpec Tiny = new(
        "tiny",
        Layers: 2,
        HiddenSize: 16,
        IntermediateSize: 24,
        AttentionHeads: 4,
        KeyValueHeads: 2,
        VocabularySize: 11,
        ContextLength: 64,
        RopeTheta: 10000,
        NormEpsilon: 1e-6
    );

    public static readonly ModelSpec Small = new(
        "small",
        Layers: 3,
        HiddenSize: 32,
        IntermediateSize: 64,
        AttentionHeads: 4,
        KeyValueHeads: 2,
        VocabularySize: 50,
        ContextLength: 128
    );

    public static Decoder.Decoder Build(
        ModelSpec spec,
        ulong seed = 7,
        double std = 0.2,
        ScalarType dtype = ScalarType.Float32
    ) =>
        Decoder.Decoder.Create(
            spec,
            new DecoderOptions
            {
                Seed = seed,
                InitStd = std,
                DType = dtype,
            }
        );

    public static Tensor Tokens(params long[] ids) => torch.tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);

    public static float[] ToArray(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();
}
