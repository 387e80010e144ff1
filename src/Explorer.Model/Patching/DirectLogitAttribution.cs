using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using static TorchSharp.torch;

namespace Explorer.Model.Patching;

/// <summary>
/// Direct logit attribution of one prompt's prediction: what each component adds to the residual stream at the last
/// position, read through the final norm's scale frozen at its value on the final state (as TransformerLens does) and
/// projected on the answer direction W_U[answer] − W_U[wrong]. The embedding, every query head, every o_proj bias and
/// every MLP are components; their attributions sum to <see cref="Total"/>, which is the logit difference itself
/// (<see cref="Actual"/>) up to rounding, because with the scale frozen the final norm and the head are linear.
/// </summary>
/// <param name="Heads">(L, H): query head h of layer l through o_proj.</param>
/// <param name="AttentionBias">o_proj's bias of each layer (zero where it has none).</param>
/// <param name="Mlp">Each layer's MLP output.</param>
public sealed record DirectLogitAttribution(
    int Answer,
    int Wrong,
    double Embedding,
    double[,] Heads,
    double[] AttentionBias,
    double[] Mlp,
    double Actual
)
{
    public double Total
    {
        get
        {
            var total = Embedding + AttentionBias.Sum() + Mlp.Sum();
            foreach (var v in Heads)
                total += v;
            return total;
        }
    }

    /// <summary>
    /// As a layer × component map: columns 0 … H − 1 the query heads, column H the MLP (o_proj's bias, when the family
    /// has one, is left out of the map; <see cref="AttentionBias"/> holds it).
    /// </summary>
    public SweepResult ToSweep()
    {
        int layers = Heads.GetLength(0),
            heads = Heads.GetLength(1);
        var values = new double[layers, heads + 1];
        for (var l = 0; l < layers; l++)
        {
            for (var h = 0; h < heads; h++)
                values[l, h] = Heads[l, h];
            values[l, heads] = Mlp[l];
        }
        return new SweepResult(
            "direct logit attribution",
            "logit difference each head and MLP adds directly, through the frozen final norm",
            Actual,
            Actual,
            values
        );
    }

    /// <summary>
    /// One forward (resident or streamed) of <paramref name="ids"/>, reading each head's output as the layer runs.
    /// Pre-norm blocks only: there the branches add to the residual as they are.
    /// </summary>
    public static DirectLogitAttribution Compute(
        Decoder.Decoder decoder,
        int[] ids,
        int answer,
        int wrong,
        CancellationToken cancellation = default
    )
    {
        var spec = decoder.Spec;
        if (spec.NormPlacement != NormPlacement.Pre)
            throw new InvalidOperationException(
                $"{spec.Name} normalises its branches after they run ({spec.NormPlacement}-norm): "
                    + "direct logit attribution needs pre-norm blocks, whose outputs add to the residual as "
                    + "they are."
            );
        new PatchingProblem(ids, ids, answer, wrong).Check(spec.VocabularySize);
        int layers = spec.Layers,
            heads = spec.AttentionHeads;
        var headOut = new Tensor?[layers];
        var biases = new Tensor?[layers];
        var states = new Tensor?[layers + 1];
        using var scope = NewDisposeScope();
        Tensor Keep(Tensor t)
        {
            t.DetachFromDisposeScope();
            scope.Attach(t);
            return t;
        }
        var observing = new Interventions
        {
            ObserveHeads = (l, perHead, bias) =>
            {
                // Kept past the forward's own scopes; freed by this method's.
                headOut[l] = Keep(perHead);
                biases[l] = bias is null ? null : Keep(bias);
            },
        };
        using var input = Hosting.LiveModel.ToTensor(ids);
        Tensor logits;
        using (no_grad())
            logits = decoder.Run(input, null, cancellation, edits: observing, onResidual: (b, x) =>
            {
                states[b] = Keep(x[0, ^1].to(ScalarType.Float32).cpu().clone());
                return x;
            });
        var last = logits[0, ^1].to(ScalarType.Float32);
        var actual = (last[answer] - last[wrong]).item<float>();

        // The answer direction through the final norm's weight, and the norm's 1/rms on the final state, frozen.
        var norm = decoder.FinalNorm;
        // No Scalar made on the fly: one the GC frees while a native call reads it is what HeldScalars guards against.
        var gain = norm.Weight.detach().to(ScalarType.Float32).cpu().clone();
        if (norm.WeightIsOffset)
            gain.add_(HeldScalars.One, HeldScalars.One);
        var unembedding = decoder.Unembedding.detach();
        var rows = (unembedding[answer].to(ScalarType.Float32) - unembedding[wrong].to(ScalarType.Float32)).cpu();
        var final = states[layers]!;
        using var scale = tensor(
            1 / Math.Sqrt(final.square().mean().item<float>() + spec.NormEpsilon),
            ScalarType.Float32
        );
        var direction = gain * rows * scale; // (d)
        double Along(Tensor v) => v.dot(direction).item<float>();

        var headValues = new double[layers, heads];
        var biasValues = new double[layers];
        var mlpValues = new double[layers];
        for (var l = 0; l < layers; l++)
        {
            var perHead = headOut[l]!; // (H, d)
            var projected = perHead.matmul(direction).data<float>().ToArray();
            for (var h = 0; h < heads; h++)
                headValues[l, h] = projected[h];
            var attention = perHead.sum([0]);
            if (biases[l] is { } bias)
            {
                biasValues[l] = Along(bias);
                attention = attention + bias;
            }
            // Pre-norm: state after l = state before + attention + MLP; what the heads do not account for is the MLP's.
            mlpValues[l] = Along(states[l + 1]! - states[l]! - attention);
        }
        return new DirectLogitAttribution(answer, wrong, Along(states[0]!), headValues, biasValues, mlpValues, actual);
    }
}
