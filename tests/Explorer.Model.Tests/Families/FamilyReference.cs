namespace Explorer.Model.Tests.Families;

/// <summary>
/// An independent forward of each family in double precision, plain loops, written from the semantics of transformers'
/// modeling files (LlamaModel, MistralModel, Qwen2Model, Qwen3Model, GemmaModel, Phi3Model, Olmo2Model) and
/// modeling_rope_utils / masking_utils; it shares no code with Explorer's decoder. <paramref name="without"/> drops one
/// feature, for the negative controls: "rope_scaling", "window", "qk_norm", "bias", "embed_scale", "one_plus",
/// "branch_norms", "fused_order" (gate and up swapped in gate_up_proj), "head_dim" (scaled by 1/√(hidden/heads)).
/// </summary>
internal static class FamilyReference
{
    // Residuals[layer][position] after each layer
    public sealed record Result(double[][] Logits, double[][][] Residuals);

    /// <summary>An intervention, computed here by its definition: a query head's output before o_proj zeroed or set to
    /// its mean over positions, a layer skipped.</summary>
    public sealed record Edits(int Layer = -1, int Head = -1, bool MeanHead = false, int SkipLayer = -1);

    public static Result Forward(
        FamilyCase c,
        IReadOnlyDictionary<string, double[]> w,
        int[] tokens,
        params string[] without
    ) => Forward(c, w, tokens, new Edits(), without);

    public static Result Forward(
        FamilyCase c,
        IReadOnlyDictionary<string, double[]> w,
        int[] tokens,
        Edits edits,
        params string[] without
    )
    {
        bool Off(string feature) => without.Contains(feature);
        int d = c.Hidden,
            hd = c.HeadDim,
            heads = c.Heads,
            kvh = c.KvHeads,
            f = c.Ffn,
            t = tokens.Length;
        int qDim = heads * hd,
            kvDim = kvh * hd;
        var inverse = InverseFrequencies(c, t, Off("rope_scaling"));

        double[] Norm(double[] x, string name)
        {
            var weight = w[name];
            var scale = 1 / Math.Sqrt(x.Sum(v => v * v) / x.Length + c.Eps);
            return x.Select((v, i) => v * scale * (c.OnePlusNorm && !Off("one_plus") ? 1 + weight[i] : weight[i]))
                .ToArray();
        }
        double[] Linear(string name, double[] x, int outputs, bool bias)
        {
            var m = w[name + ".weight"];
            var y = new double[outputs];
            for (var o = 0; o < outputs; o++)
            {
                for (var i = 0; i < x.Length; i++)
                    y[o] += m[o * x.Length + i] * x[i];
                if (bias && !Off("bias"))
                    y[o] += w[name + ".bias"][o];
            }
            return y;
        }
        double Act(double x) =>
            c.Act switch
            {
                "silu" => x / (1 + Math.Exp(-x)),
                "gelu_pytorch_tanh" => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
                _ => throw new ArgumentException(c.Act),
            };
        void Rope(double[] v, int offset, int position)
        {
            var half = hd / 2;
            for (var i = 0; i < half; i++)
            {
                var angle = position * inverse[i];
                double a = v[offset + i],
                    b = v[offset + i + half];
                v[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
                v[offset + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
            }
        }

        var scaleEmbedding = c.ScaledEmbedding && !Off("embed_scale") ? Math.Sqrt(d) : 1;
        var x = tokens
            .Select(tok =>
                Enumerable
                    .Range(0, d)
                    .Select(i => w["model.embed_tokens.weight"][tok * d + i] * scaleEmbedding)
                    .ToArray()
            )
            .ToArray();
        var residuals = new double[c.Layers][][];
        for (var l = 0; l < c.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            var attnIn = c.BranchNorms ? x : x.Select(v => Norm(v, p + "input_layernorm.weight")).ToArray();
            double[][] q,
                k,
                v;
            if (c.Fused)
            {
                var qkv = attnIn.Select(a => Linear(p + "self_attn.qkv_proj", a, qDim + 2 * kvDim, false)).ToArray();
                q = qkv.Select(r => r[..qDim]).ToArray();
                k = qkv.Select(r => r[qDim..(qDim + kvDim)]).ToArray();
                v = qkv.Select(r => r[(qDim + kvDim)..]).ToArray();
            }
            else
            {
                var bias = c.QkvBias || c.AttentionBias;
                q = attnIn.Select(a => Linear(p + "self_attn.q_proj", a, qDim, bias)).ToArray();
                k = attnIn.Select(a => Linear(p + "self_attn.k_proj", a, kvDim, bias)).ToArray();
                v = attnIn.Select(a => Linear(p + "self_attn.v_proj", a, kvDim, bias)).ToArray();
            }
            if (c.QkNorm == "all" && !Off("qk_norm"))
            {
                q = q.Select(r => Norm(r, p + "self_attn.q_norm.weight")).ToArray();
                k = k.Select(r => Norm(r, p + "self_attn.k_norm.weight")).ToArray();
            }
            if (c.QkNorm == "head" && !Off("qk_norm"))
            {
                q = q.Select(r => PerHead(r, heads, h => Norm(h, p + "self_attn.q_norm.weight"))).ToArray();
                k = k.Select(r => PerHead(r, kvh, h => Norm(h, p + "self_attn.k_norm.weight"))).ToArray();
            }
            for (var pos = 0; pos < t; pos++)
            {
                for (var h = 0; h < heads; h++)
                    Rope(q[pos], h * hd, pos);
                for (var g = 0; g < kvh; g++)
                    Rope(k[pos], g * hd, pos);
            }
            var window = c.Window is { } win && l >= c.FirstSliding && !Off("window") ? win : int.MaxValue;
            var scale = Off("head_dim") ? 1 / Math.Sqrt((double)d / heads) : 1 / Math.Sqrt(hd);
            var context = new double[t][];
            for (var i = 0; i < t; i++)
            {
                context[i] = new double[qDim];
                // Keys j with i − window < j ≤ i.
                var first = window == int.MaxValue ? 0 : Math.Max(0, i - window + 1);
                for (var h = 0; h < heads; h++)
                {
                    var g = h / (heads / kvh);
                    var scores = new double[i + 1 - first];
                    for (var j = first; j <= i; j++)
                    {
                        for (var e = 0; e < hd; e++)
                            scores[j - first] += q[i][h * hd + e] * k[j][g * hd + e];
                        scores[j - first] *= scale;
                    }
                    var max = scores.Max();
                    var exp = scores.Select(z => Math.Exp(z - max)).ToArray();
                    var sum = exp.Sum();
                    for (var j = first; j <= i; j++)
                    for (var e = 0; e < hd; e++)
                        context[i][h * hd + e] += exp[j - first] / sum * v[j][g * hd + e];
                }
            }
            if (edits.Layer == l)
            {
                var mean = new double[hd];
                for (var i = 0; i < t; i++)
                for (var e = 0; e < hd; e++)
                    mean[e] += context[i][edits.Head * hd + e] / t;
                for (var i = 0; i < t; i++)
                for (var e = 0; e < hd; e++)
                    context[i][edits.Head * hd + e] = edits.MeanHead ? mean[e] : 0;
            }
            var input = x.Select(r => (double[])r.Clone()).ToArray();
            for (var i = 0; i < t; i++)
            {
                var o = Linear(p + "self_attn.o_proj", context[i], d, c.AttentionBias);
                if (c.BranchNorms && !Off("branch_norms"))
                    o = Norm(o, p + "post_attention_layernorm.weight");
                var h = x[i].Select((value, e) => value + o[e]).ToArray();
                var ffnIn = c.BranchNorms ? h : Norm(h, p + "post_attention_layernorm.weight");
                double[] gate,
                    up;
                if (c.Fused)
                {
                    var both = Linear(p + "mlp.gate_up_proj", ffnIn, 2 * f, false);
                    (gate, up) = Off("fused_order") ? (both[f..], both[..f]) : (both[..f], both[f..]);
                }
                else
                {
                    gate = Linear(p + "mlp.gate_proj", ffnIn, f, c.MlpBias);
                    up = Linear(p + "mlp.up_proj", ffnIn, f, c.MlpBias);
                }
                var inner = gate.Select((g, e) => Act(g) * up[e]).ToArray();
                var down = Linear(p + "mlp.down_proj", inner, d, c.MlpBias);
                if (c.BranchNorms && !Off("branch_norms"))
                    down = Norm(down, p + "post_feedforward_layernorm.weight");
                x[i] = h.Select((value, e) => value + down[e]).ToArray();
            }
            if (edits.SkipLayer == l)
                x = input; // a skipped layer's output is its input
            residuals[l] = x.Select(r => (double[])r.Clone()).ToArray();
        }
        var head = c.Tied ? "model.embed_tokens" : "lm_head";
        var logits = x.Select(r => Linear(head, Norm(r, "model.norm.weight"), c.Vocab, false)).ToArray();
        return new Result(logits, residuals);
    }

    private static double[] PerHead(double[] row, int heads, Func<double[], double[]> norm)
    {
        var hd = row.Length / heads;
        return Enumerable.Range(0, heads).SelectMany(h => norm(row[(h * hd)..((h + 1) * hd)])).ToArray();
    }

    /// <summary>modeling_rope_utils: default, linear, dynamic (NTK, for sequences longer than max_position_embeddings)
    /// and llama3.</summary>
    public static double[] InverseFrequencies(FamilyCase c, int length, bool plain = false)
    {
        var hd = c.HeadDim;
        System.Text.Json.JsonElement? scaling =
            plain || c.RopeScaling is null ? null : System.Text.Json.JsonDocument.Parse(c.RopeScaling).RootElement;
        var type = scaling is { } s
            ? (s.TryGetProperty("rope_type", out var rt) ? rt : s.GetProperty("type")).GetString()
            : null;
        double Get(string key) => scaling!.Value.GetProperty(key).GetDouble();
        var theta = c.Theta;
        if (type == "dynamic")
        {
            var seq = Math.Max(length, c.MaxPositions);
            theta *= Math.Pow(Get("factor") * seq / c.MaxPositions - (Get("factor") - 1), hd / (hd - 2.0));
        }
        var inv = Enumerable.Range(0, hd / 2).Select(i => 1 / Math.Pow(theta, 2.0 * i / hd)).ToArray();
        if (type == "linear")
            return inv.Select(v => v / Get("factor")).ToArray();
        if (type == "llama3")
        {
            double factor = Get("factor"),
                low = Get("low_freq_factor"),
                high = Get("high_freq_factor"),
                old = Get("original_max_position_embeddings");
            return inv.Select(v =>
                {
                    var wavelength = 2 * Math.PI / v;
                    if (wavelength < old / high)
                        return v;
                    if (wavelength > old / low)
                        return v / factor;
                    var smooth = (old / wavelength - low) / (high - low);
                    return (1 - smooth) * v / factor + smooth * v;
                })
                .ToArray();
        }
        return inv;
    }
}
