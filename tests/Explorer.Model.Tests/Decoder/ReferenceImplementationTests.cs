using Explorer.Core.Specs;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

/// <summary>
/// The decoder against a plain C# loop implementation of the Hugging Face LLaMA forward pass written from its
/// definition (RMSNorm in full precision, RoPE in halves form, causal GQA softmax attention, SwiGLU).
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
            double a = v[offset + i], b = v[offset + i + half];
            v[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            v[offset + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    private static double[][] Reference(ModelSpec s, Weights w, int[] tokens)
    {
        int d = s.HiddenSize, hd = s.HeadDim, heads = s.AttentionHeads, kvHeads = s.KeyValueHeads, f = s.IntermediateSize, t = tokens.Length;
        var x = tokens.Select(tok => Enumerable.Range(0, d).Select(i => (double)w["model.embed_tokens.weight"][tok * d + i]).ToArray()).ToArray();
        for (var l = 0; l < s.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            var n1 = x.Select(v => RmsNorm(v, w[p + "input_layernorm.weight"], s.NormEpsilon)).ToArray();
            var q = n1.Select(v => MatVec(w[p + "self_attn.q_proj.weight"], v, heads * hd)).ToArray();
            var k = n1.Select(v => MatVec(w[p + "self_attn.k_proj.weight"], v, kvHeads * hd)).ToArray();
            var v2 = n1.Select(v => MatVec(w[p + "self_attn.v_proj.weight"], v, kvHeads * hd)).ToArray();
            for (var pos = 0; pos < t; pos++)
            {
                for (var h = 0; h < heads; h++) Rope(q[pos], h * hd, hd, pos, s.RopeTheta);
                for (var g = 0; g < kvHeads; g++) Rope(k[pos], g * hd, hd, pos, s.RopeTheta);
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
                        for (var c = 0; c < hd; c++) scores[j] += q[i][h * hd + c] * k[j][g * hd + c];
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
            }
            for (var i = 0; i < t; i++)
            {
                var n2 = RmsNorm(hMid[i], w[p + "post_attention_layernorm.weight"], s.NormEpsilon);
                var gate = MatVec(w[p + "mlp.gate_proj.weight"], n2, f);
                var up = MatVec(w[p + "mlp.up_proj.weight"], n2, f);
                var inner = gate.Select((gv, c) => gv / (1 + Math.Exp(-gv)) * up[c]).ToArray();
                var down = MatVec(w[p + "mlp.down_proj.weight"], inner, d);
                x[i] = hMid[i].Select((v, c) => v + down[c]).ToArray();
            }
        }
        return x.Select(v => MatVec(w["lm_head.weight"], RmsNorm(v, w["model.norm.weight"], s.NormEpsilon), s.VocabularySize)).ToArray();
    }

    [Fact]
    public void TinyModelLogitsEqualTheLoopImplementation()
    {
        var spec = TestModels.Tiny;
        using var decoder = TestModels.Build(spec, seed: 11, std: 0.3);
        var weights = new Weights(decoder.named_parameters().ToDictionary(p => p.name, p => (TestModels.ToArray(p.parameter), p.parameter.shape)));
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
