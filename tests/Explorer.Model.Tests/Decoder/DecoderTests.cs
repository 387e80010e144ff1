using Explorer.Core.Accounting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public class DecoderTests
{
    [Theory]
    [InlineData("deepseek-llm-7b")]
    [InlineData("deepseek-llm-67b")]
    [InlineData("llama-2-70b")]
    public void MetaDeviceCountMatchesCoreAccounting(string name)
    {
        var spec = ModelPresets.Get(name);
        using var decoder = Decoder.Decoder.Create(spec, new DecoderOptions { Device = META });
        Assert.Equal(ParameterBreakdown.Of(spec).Total, decoder.ParameterCount);
    }

    [Fact]
    public void MiniPresetCountsMatchCoreAccounting()
    {
        foreach (var spec in MiniPresets.All)
        {
            using var decoder = Decoder.Decoder.Create(spec, new DecoderOptions { Device = META });
            Assert.Equal(ParameterBreakdown.Of(spec).Total, decoder.ParameterCount);
        }
    }

    [Fact]
    public void ParameterNamesFollowTheHuggingFaceLayout()
    {
        using var decoder = TestModels.Build(TestModels.Tiny);
        var names = decoder.named_parameters().Select(p => p.name).ToHashSet();
        string[] expected =
        [
            "model.embed_tokens.weight",
            "model.norm.weight",
            "lm_head.weight",
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.self_attn.v_proj.weight",
            "model.layers.0.self_attn.o_proj.weight",
            "model.layers.1.mlp.gate_proj.weight",
            "model.layers.1.mlp.up_proj.weight",
            "model.layers.1.mlp.down_proj.weight",
            "model.layers.1.input_layernorm.weight",
            "model.layers.1.post_attention_layernorm.weight",
        ];
        Assert.All(expected, n => Assert.Contains(n, names));
        Assert.Equal(2 + 2 * 9 + 1, names.Count);
        var k = decoder.named_parameters().Single(p => p.name == "model.layers.0.self_attn.k_proj.weight").parameter;
        Assert.Equal(new long[] { 2 * 4, 16 }, k.shape); // [kv_heads · head_dim, d], stored [out, in]
    }

    [Fact]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        using var a = TestModels.Build(TestModels.Small, seed: 42);
        using var b = TestModels.Build(TestModels.Small, seed: 42);
        using var c = TestModels.Build(TestModels.Small, seed: 43);
        using var tokens = TestModels.Tokens(1, 2, 3, 4, 5);
        using var la = a.Logits(tokens);
        using var lb = b.Logits(tokens);
        using var lc = c.Logits(tokens);
        Assert.Equal(TestModels.ToArray(la), TestModels.ToArray(lb));
        Assert.False(torch.allclose(la, lc));
    }

    [Fact]
    public void ChangingALaterTokenChangesNoEarlierOutput()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var a = decoder.Logits(TestModels.Tokens(3, 1, 4, 1, 5, 9, 2, 6));
        using var b = decoder.Logits(TestModels.Tokens(3, 1, 4, 1, 7, 9, 2, 6));
        Assert.Equal(TestModels.ToArray(a[.., ..4]), TestModels.ToArray(b[.., ..4]));
        Assert.False(torch.allclose(a[.., 4..], b[.., 4..]));
    }

    [Fact]
    public void GqaWithEveryKvHeadEqualsMha()
    {
        // A GQA model and an MHA model whose K and V heads are the GQA heads repeated per group compute the same.
        var gqaSpec = TestModels.Small; // 4 heads, 2 KV heads of 8
        var mhaSpec = gqaSpec with { Name = "mha", KeyValueHeads = 4 };
        using var gqa = TestModels.Build(gqaSpec, seed: 1);
        using var mha = TestModels.Build(mhaSpec, seed: 2);
        using (torch.no_grad())
        {
            var source = gqa.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, target) in mha.named_parameters())
            {
                var from = source[name];
                if (name.EndsWith("k_proj.weight") || name.EndsWith("v_proj.weight"))
                {
                    // rows [g·8, (g+1)·8) of KV head g serve query heads 2g and 2g + 1.
                    var heads = from.view(2, 8, 32);
                    target.copy_(heads.repeat_interleave(2, dim: 0).reshape(32, 32));
                }
                else
                    target.copy_(from);
            }
        }
        using var tokens = TestModels.Tokens(5, 17, 3, 29, 8, 1);
        Assert.True(torch.allclose(gqa.Logits(tokens), mha.Logits(tokens), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void TracedLogitsEqualFusedLogits()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(2, 7, 1, 8, 2, 8, 1, 8, 2, 8);
        using var fused = decoder.Logits(tokens);
        using var trace = decoder.Trace(tokens, TraceOptions.Everything);
        var traced = trace.LastLogits();
        var expected = TestModels.ToArray(fused[0, -1]);
        for (var i = 0; i < expected.Length; i++)
            Assert.InRange(Math.Abs(expected[i] - traced[i]), 0, 1e-4);
    }

    [Fact]
    public void Bf16IsCloseToFp32()
    {
        using var fp32 = TestModels.Build(TestModels.Small, std: 0.05);
        using var bf16 = TestModels.Build(TestModels.Small, std: 0.05, dtype: ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, bf16.DType);
        using var tokens = TestModels.Tokens(1, 2, 3, 4);
        var a = TestModels.ToArray(fp32.Logits(tokens));
        var b = TestModels.ToArray(bf16.Logits(tokens));
        var maxDiff = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        var scale = a.Max(Math.Abs);
        Assert.InRange(maxDiff, 0, 0.05 * scale + 0.02);
    }

    [Fact]
    public void PostNormVariantRunsAndDiffers()
    {
        using var pre = TestModels.Build(TestModels.Small);
        using var post = TestModels.Build(TestModels.Small with { NormPlacement = NormPlacement.Post });
        using var tokens = TestModels.Tokens(1, 2, 3);
        var logits = TestModels.ToArray(post.Logits(tokens));
        Assert.All(logits, v => Assert.True(float.IsFinite(v)));
        Assert.False(torch.allclose(pre.Logits(tokens), post.Logits(tokens)));
    }

    [Fact]
    public void RejectsBadTokenTensors()
    {
        using var decoder = TestModels.Build(TestModels.Tiny);
        Assert.Throws<ArgumentException>(() => decoder.Logits(torch.zeros(1, 3)));
        Assert.Throws<ArgumentException>(() =>
            decoder.Trace(torch.zeros(2, 3, ScalarType.Int64), TraceOptions.Everything)
        );
    }
}
