using Explorer.Core.Specs;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>
/// The decoder against a plain C# loop implementation of the Hugging Face LLaMA forward pass written from its
/// definition (RMSNorm in full precision, RoPE in halves form, causal GQA softmax attention, SwiGLU or GELU, pre- or
/// post-norm, an untied or tied LM head), on random weights, the norms' included.
/// </summary>
public class ReferenceImplementationTests
{
    private sealed class Weights(Dictionary<string, (float[] Data, long[] Shape)> all)
    {
        public float[] this[string name] => all[name].Data;
    }

    private static double[] RmsNorm(double[] x, float[] w, double eps)
    {
        var mean = x.Sum(v => v * v) / x.Length;
        var scale = 1 / Math.Sqrt(mean + eps);
        return x.Select((v, i) => v * scale * w[i]).ToArray();
    }

    // y = W x for W stored [out, in] row-major.
    private static double[] MatVec(float[] w, double[] x, int outputs)
    {
        var y = new double[outputs];
        for (var o = 0; o < outputs; o++)
        for (var i = 0; i < x.Length; i++)
            y[o] += w[o * x.Length + i] * x[i];
        return y;
    }

    private static void Rope(double[] v, int offset, int headDim, int position, double theta)
    {
        var half = headDim / 2;
        for (var i = 0; i < half; i++)
        {
            var angle = position * Math.Pow(theta, -2.0 * i / headDim);
            double a = v[offset + i],
                b = v[offset + i + half];
            v[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            v[offset + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    /// <summary>erf by Abramowitz and Stegun 7.1.26 (error under 1.5e-7): GELU(x) = x·Φ(x) = x·(1 +
    /// erf(x/√2))/2.</summary>
    private static double Erf(double x)
    {
        var sign = Math.Sign(x);
        x = Math.Abs(x);
        var t = 1 / (1 + 0.3275911 * x);
        var y =
            1
            - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592)
                * t
                * Math.Exp(-x * x);
        return sign * y;
    }

    private static double Gelu(double x) => x * (1 + Erf(x / Math.Sqrt(2))) / 2;

    private static double[][] Reference(ModelSpec s, Weights w, int[] tokens)
    {
        int d = s.HiddenSize,
            hd = s.HeadDim,
            heads = s.AttentionHeads,
            kvHeads = s.KeyValueHeads,
            f = s.IntermediateSize,
            t = tokens.Length;
        var x = tokens
            .Select(tok =>
                Enumerable.Range(0, d).Select(i => (double)w["model.embed_tokens.weight"][tok * d + i]).ToArray()
            )
            .ToArray();
        for (var l = 0; l < s.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            var pre = s.NormPlacement == NormPlacement.Pre;
            // Pre-norm attends norm(x); post-norm attends x and normalises after each residual sum.
            var n1 = pre ? x.Select(v => RmsNorm(v, w[p + "input_layernorm.weight"], s.NormEpsilon)).ToArray() : x;
            var q = n1.Select(v => MatVec(w[p + "self_attn.q_proj.weight"], v, heads * hd)).ToArray();
            var k = n1.Select(v => MatVec(w[p + "self_attn.k_proj.weight"], v, kvHeads * hd)).ToArray();
            var v2 = n1.Select(v => MatVec(w[p + "self_attn.v_proj.weight"], v, kvHeads * hd)).ToArray();
            for (var pos = 0; pos < t; pos++)
            {
                for (var h = 0; h < heads; h++)
                    Rope(q[pos], h * hd, hd, pos, s.RopeTheta);
                for (var g = 0; g < kvHeads; g++)
                    Rope(k[pos], g * hd, hd, pos, s.RopeTheta);
            }
            var context = new double[t][];
            for (var i = 0; i < t; i++)
            {
                context[i] = new double[heads * hd];
                for (var h = 0; h < heads; h++)
                {
                    var g = h / (heads / kvHeads);
                    var scores = new double[i + 1];
                    for (var j = 0; j <= i; j++)
                    {
                        for (var c = 0; c < hd; c++)
                            scores[j] += q[i][h * hd + c] * k[j][g * hd + c];
                        scores[j] /= Math.Sqrt(hd);
                    }
                    var max = scores.Max();
                    var e = scores.Select(z => Math.Exp(z - max)).ToArray();
                    var sum = e.Sum();
                    for (var j = 0; j <= i; j++)
                    for (var c = 0; c < hd; c++)
                        context[i][h * hd + c] += e[j] / sum * v2[j][g * hd + c];
                }
            }
            var hMid = new double[t][];
            for (var i = 0; i < t; i++)
            {
                var o = MatVec(w[p + "self_attn.o_proj.weight"], context[i], d);
                hMid[i] = x[i].Select((v, c) => v + o[c]).ToArray();
                if (!pre)
                    hMid[i] = RmsNorm(hMid[i], w[p + "input_layernorm.weight"], s.NormEpsilon);
            }
            for (var i = 0; i < t; i++)
            {
                var n2 = pre ? RmsNorm(hMid[i], w[p + "post_attention_layernorm.weight"], s.NormEpsilon) : hMid[i];
                var up = MatVec(w[p + "mlp.up_proj.weight"], n2, f);
                double[] inner;
                if (s.FfnKind == FfnKind.SwiGlu)
                {
                    var gate = MatVec(w[p + "mlp.gate_proj.weight"], n2, f);
                    inner = gate.Select((gv, c) => gv / (1 + Math.Exp(-gv)) * up[c]).ToArray();
                }
                else
                    inner = up.Select(Gelu).ToArray();
                var down = MatVec(w[p + "mlp.down_proj.weight"], inner, d);
                x[i] = hMid[i].Select((v, c) => v + down[c]).ToArray();
                if (!pre)
                    x[i] = RmsNorm(x[i], w[p + "post_attention_layernorm.weight"], s.NormEpsilon);
            }
        }
        // A tied head is the embedding table: logits = E · norm(h).
        var head = s.TiedEmbeddings ? w["model.embed_tokens.weight"] : w["lm_head.weight"];
        return x.Select(v => MatVec(head, RmsNorm(v, w["model.norm.weight"], s.NormEpsilon), s.VocabularySize))
            .ToArray();
    }

    public static TheoryData<NormPlacement, FfnKind, bool> Variants() =>
        new()
        {
            { NormPlacement.Pre, FfnKind.SwiGlu, false }, // DeepSeek LLM, LLaMA
            { NormPlacement.Pre, FfnKind.SwiGlu, true }, // the shipped minis: a tied head
            { NormPlacement.Post, FfnKind.SwiGlu, false },
            { NormPlacement.Pre, FfnKind.Gelu, false },
            { NormPlacement.Post, FfnKind.Gelu, true },
        };

    [Theory]
    [MemberData(nameof(Variants))]
    public void TinyModelLogitsEqualTheLoopImplementation(NormPlacement placement, FfnKind ffn, bool tied)
    {
        var spec = TestModels.Tiny with { NormPlacement = placement, FfnKind = ffn, TiedEmbeddings = tied };
        using var decoder = TestModels.Build(spec, seed: 11, std: 0.3);
        // Norm weights away from 1 (the initialisation's), so that a norm applied in the wrong place or not at all
        // shows.
        using (no_grad())
        {
            var random = new Generator(5, CPU);
            foreach (
                var (name, parameter) in decoder
                    .named_parameters()
                    .Where(p => p.name.EndsWith("norm.weight", StringComparison.Ordinal))
            )
                // uniform in [0.25, 1.75)
                parameter.copy_(rand(parameter.shape, generator: random).mul_(1.5).add_(0.25));
        }
        var weights = new Weights(
            decoder
                .named_parameters()
                .ToDictionary(p => p.name, p => (TestModels.ToArray(p.parameter), p.parameter.shape))
        );
        int[] tokens = [3, 9, 0, 4, 4, 10, 1];

        var expected = Reference(spec, weights, tokens);
        using var logits = decoder.Logits(TestModels.Tokens(tokens.Select(t => (long)t).ToArray()));
        for (var i = 0; i < tokens.Length; i++)
        {
            var row = TestModels.ToArray(logits[0, i]);
            for (var c = 0; c < spec.VocabularySize; c++)
                Assert.InRange(row[c] - expected[i][c], -1e-4, 1e-4);
        }
    }
}
