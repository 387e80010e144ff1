using Explorer.Model.Decoder;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Tests.Families;

/// <summary>
/// Interventions in the decoder's one forward: head ablation and layer skips against the independent reference
/// (<see cref="FamilyReference"/>, which computes them by their definition), patches that must reproduce a run exactly,
/// streamed equal to resident, and bad sites refused naming the value and the range.
/// </summary>
public sealed class InterventionTests : IDisposable
{
    private readonly string _root = Path.Combine(
        Path.GetTempPath(),
        "explorer-interventions-" + Guid.NewGuid().ToString("N")
    );

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    private static int[] Tokens => FamilyForwardTests.Tokens;

    private (string Directory, Dictionary<string, double[]> Weights) Write(
        string name,
        bool bf16 = false,
        int shards = 1
    )
    {
        var c = FamilyForwardTests.Cases[name];
        var directory = Path.Combine(_root, $"{name}-{bf16}-{shards}");
        var weights = TestCheckpointWriter.RandomWeights(c, 9, bf16);
        TestCheckpointWriter.Write(directory, c, weights, bf16, shards);
        return (directory, weights);
    }

    private static Tensor Input => TestModels.Tokens(Tokens.Select(t => (long)t).ToArray());

    private static double Relative(float[] actual, double[] expected) =>
        expected.Select((r, i) => Math.Abs(actual[i] - r)).Max() / Math.Max(expected.Max(Math.Abs), 1e-30);

    private static void AssertLogits(Tensor logits, FamilyReference.Result expected, string what)
    {
        for (var i = 0; i < Tokens.Length; i++)
        {
            var error = Relative(TestModels.ToArray(logits[0, i]), expected.Logits[i]);
            Assert.True(error <= 1e-4, $"{what}: logits at position {i} differ by {error:E2} relative");
        }
    }

    [Theory]
    [InlineData("deepseek", 1, 2, false)]
    [InlineData("llama3", 0, 3, false)] // GQA: query head 3 of KV group 1
    [InlineData("mistral", 1, 0, true)]
    [InlineData("qwen3", 1, 1, false)]
    [InlineData("gemma", 0, 1, true)]
    [InlineData("phi3", 1, 3, false)]
    [InlineData("olmo2", 0, 2, true)]
    public void AnAblatedHeadEqualsTheReferenceWithThatHeadAblated(string name, int layer, int head, bool mean)
    {
        var c = FamilyForwardTests.Cases[name];
        var (directory, weights) = Write(name);
        using var decoder = Checkpoint.Load(directory);
        var kind = mean ? Ablation.Mean : Ablation.Zero;
        using var logits = decoder.Logits(Input, new Interventions { Heads = [(new HeadSite(layer, head), kind)] });
        AssertLogits(
            logits,
            FamilyReference.Forward(c, weights, Tokens, new FamilyReference.Edits(layer, head, mean)),
            $"{name} {kind} head {layer}.{head}"
        );
        // Negative control: the plain run is another model's output.
        using var plain = decoder.Logits(Input);
        Assert.True(
            Relative(
                TestModels.ToArray(plain[0, ^1]),
                FamilyReference.Forward(c, weights, Tokens, new FamilyReference.Edits(layer, head, mean)).Logits[^1]
            ) > 1e-3
        );
    }

    [Theory]
    [InlineData("deepseek", 0)]
    [InlineData("qwen2", 1)]
    [InlineData("olmo2", 1)]
    public void ASkippedLayerEqualsTheReferenceWithoutIt(string name, int layer)
    {
        var c = FamilyForwardTests.Cases[name];
        var (directory, weights) = Write(name);
        using var decoder = Checkpoint.Load(directory);
        using var logits = decoder.Logits(Input, new Interventions { SkippedLayers = [layer] });
        AssertLogits(
            logits,
            FamilyReference.Forward(c, weights, Tokens, new FamilyReference.Edits(SkipLayer: layer)),
            $"{name} without layer {layer}"
        );
    }

    [Fact]
    public void SkippingEveryLayerGivesTheEmbeddingsLens()
    {
        var (directory, _) = Write("llama3");
        using var decoder = Checkpoint.Load(directory);
        using var logits = decoder.Logits(
            Input,
            new Interventions { SkippedLayers = Enumerable.Range(0, decoder.Spec.Layers).ToArray() }
        );
        using var embedding = decoder.Embed(Input);
        using var lens = decoder.Head(embedding);
        Assert.Equal(TestModels.ToArray(lens), TestModels.ToArray(logits));
    }

    private static ResidualPatch[] PatchesFrom(Tensor states, IEnumerable<int> boundaries, int length) =>
        boundaries
            .SelectMany(b =>
                Enumerable.Range(0, length).Select(p => new ResidualPatch(b, p, TestModels.ToArray(states[b, p])))
            )
            .ToArray();

    [Fact]
    public void PatchingEverySiteFromTheRunItselfReproducesItsLogitsExactly()
    {
        var (directory, _) = Write("qwen2");
        using var decoder = Checkpoint.Load(directory);
        using var states = decoder.ResidualStates(Input);
        Assert.Equal([decoder.Spec.Layers + 1, Tokens.Length, decoder.Spec.HiddenSize], states.shape);
        using var plain = decoder.Logits(Input);
        using var patched = decoder.Logits(
            Input,
            new Interventions
            {
                Patches = PatchesFrom(states, Enumerable.Range(0, decoder.Spec.Layers + 1), Tokens.Length),
            }
        );
        Assert.Equal(TestModels.ToArray(plain), TestModels.ToArray(patched));
    }

    [Fact]
    public void PatchingTheLastLayerFromAnotherPromptGivesThatPromptsLogits()
    {
        var (directory, _) = Write("mistral");
        using var decoder = Checkpoint.Load(directory);
        using var other = TestModels.Tokens(Tokens.Reverse().Select(t => (long)t).ToArray());
        using var source = decoder.ResidualStates(other);
        using var expected = decoder.Logits(other);
        using var patched = decoder.Logits(
            Input,
            new Interventions { Patches = PatchesFrom(source, [decoder.Spec.Layers], Tokens.Length) }
        );
        Assert.Equal(TestModels.ToArray(expected), TestModels.ToArray(patched));
        using var plain = decoder.Logits(Input);
        Assert.NotEqual(TestModels.ToArray(plain), TestModels.ToArray(patched));
    }

    [Fact]
    public void APatchAtOnePositionChangesOnlyThatPositionAndLater()
    {
        var (directory, _) = Write("deepseek");
        using var decoder = Checkpoint.Load(directory);
        using var other = TestModels.Tokens(Tokens.Reverse().Select(t => (long)t).ToArray());
        using var source = decoder.ResidualStates(other);
        using var plain = decoder.Logits(Input);
        using var patched = decoder.Logits(
            Input,
            new Interventions { Patches = [new ResidualPatch(1, 5, TestModels.ToArray(source[1, 5]))] }
        );
        for (var i = 0; i < Tokens.Length; i++)
        {
            var same = TestModels.ToArray(plain[0, i]).SequenceEqual(TestModels.ToArray(patched[0, i]));
            Assert.True(i < 5 ? same : !same, $"position {i}");
        }
    }

    [Fact]
    public void StreamedInterventionsEqualResidentOnes()
    {
        var (directory, _) = Write("olmo2", bf16: true, shards: 2);
        var interventions = new Interventions
        {
            Heads = [(new HeadSite(0, 1), Ablation.Zero), (new HeadSite(1, 3), Ablation.Mean)],
            Components = [(1, Component.Mlp, Ablation.Mean)],
            SkippedLayers = [0],
        };
        using var resident = Checkpoint.Load(directory, ScalarType.Float32);
        using var streamed = Checkpoint.LoadStreamed(directory, ScalarType.Float32);
        using var a = resident.Logits(Input, interventions);
        using var b = streamed.Logits(Input, interventions);
        Assert.Equal(TestModels.ToArray(a), TestModels.ToArray(b));
        // The trace runs the same interventions: its logits are the same numbers.
        using var trace = streamed.Trace(
            Input,
            TraceOptions.Nothing with
            {
                Residual = true,
            },
            interventions: interventions
        );
        Assert.Equal(TestModels.ToArray(a[0, ^1]), trace.LastLogits());
    }

    [Theory]
    [InlineData("qwen2", false)] // window from a layer on, biases
    [InlineData("olmo2", true)] // norms after the branches, bf16
    public void AttributionPatchingRunsStreamedWithTheResidentNumbers(string name, bool bf16)
    {
        var (directory, _) = Write(name, bf16, shards: 2);
        using var resident = Checkpoint.Load(directory, ScalarType.Float32);
        using var streamed = Checkpoint.LoadStreamed(directory, ScalarType.Float32);
        var corrupted = (int[])Tokens.Clone();
        corrupted[1] = corrupted[1] == 3 ? 4 : 3;
        var problem = new Explorer.Model.Patching.PatchingProblem(Tokens, corrupted, Answer: 5, Wrong: 7);
        var a = Explorer.Model.Patching.Sweeps.ResidualAttribution(resident, problem);
        var b = Explorer.Model.Patching.Sweeps.ResidualAttribution(streamed, problem);
        Assert.Equal(a.Clean, b.Clean, 5);
        Assert.Equal(a.Corrupted, b.Corrupted, 5);
        for (var i = 0; i < a.Values.Length; i++)
        {
            double x = a.Values[i / a.Values.GetLength(1), i % a.Values.GetLength(1)],
                y = b.Values[i / b.Values.GetLength(1), i % b.Values.GetLength(1)];
            Assert.True(
                double.IsNaN(x) ? double.IsNaN(y) : Math.Abs(x - y) < 1e-4,
                $"site {i}: {x} resident, {y} streamed"
            );
        }
        // The exact sweeps rerun layers above a site and say they need the model resident.
        var e = Assert.Throws<InvalidOperationException>(() =>
            Explorer.Model.Patching.Sweeps.ResidualPatching(streamed, problem)
        );
        Assert.Contains("attribution patching runs streamed", e.Message);
    }

    [Theory]
    [InlineData("gemma")] // (1 + weight) final norm, tied head, scaled embedding
    [InlineData("llama-bias-headdim-tied")] // o_proj bias, head_dim ≠ d / H
    public void DirectLogitAttributionSumsToTheLogitDifferenceStreamedAsResident(string name)
    {
        var (directory, _) = Write(name, bf16: false, shards: 2);
        using var resident = Checkpoint.Load(directory, ScalarType.Float32);
        using var streamed = Checkpoint.LoadStreamed(directory, ScalarType.Float32);
        var a = Explorer.Model.Patching.DirectLogitAttribution.Compute(resident, Tokens, answer: 5, wrong: 7);
        var b = Explorer.Model.Patching.DirectLogitAttribution.Compute(streamed, Tokens, answer: 5, wrong: 7);
        Assert.Equal(a.Actual, a.Total, 3);
        Assert.Equal(a.Heads, b.Heads);
        Assert.Equal(a.Mlp, b.Mlp);
        Assert.Equal(a.Actual, b.Actual);
    }

    [Fact]
    public void AKvGroupIsTheQueryHeadsThatReadOneKvHead()
    {
        var spec = Core.Specs.ModelPresets.DeepSeekLlm67B;
        Assert.Equal(Enumerable.Range(16, 8).Select(h => new HeadSite(3, h)), Interventions.KvGroup(spec, 3, 2));
    }

    [Fact]
    public void SitesOutOfRangeAreRefusedNamingTheValueAndTheRange()
    {
        var (directory, _) = Write("deepseek");
        using var decoder = Checkpoint.Load(directory);
        var bad = new Interventions
        {
            Heads = [(new HeadSite(2, 0), Ablation.Zero), (new HeadSite(0, 4), Ablation.Zero)],
            SkippedLayers = [-1],
            Patches =
            [
                new ResidualPatch(3, 0, new float[32]),
                new ResidualPatch(0, 12, new float[32]),
                new ResidualPatch(1, 0, new float[5]),
            ],
        };
        var error = Assert.Throws<ArgumentException>(() => decoder.Logits(Input, bad));
        Assert.Contains("head ablation at layer 3: layers are 1 to 2.", error.Message);
        Assert.Contains("head ablation of head 4: heads are 0 to 3.", error.Message);
        Assert.Contains("skip of layer 0: layers are 1 to 2.", error.Message);
        Assert.Contains("patch after layer 3: boundaries are 0 (the embedding) to 2.", error.Message);
        Assert.Contains("patch at position 12: positions are 0 to 11.", error.Message);
        Assert.Contains("5 values; the residual has 32.", error.Message);
    }
}
