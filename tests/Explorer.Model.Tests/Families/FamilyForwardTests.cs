using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Tests.Families;

/// <summary>
/// Each supported family, as a tiny random checkpoint in the layout transformers saves, loaded by Explorer and run
/// against <see cref="FamilyReference"/>: logits at every position and the residual after every layer within 1e-4
/// relative; each family feature with its own negative control (the reference without it must disagree).
/// </summary>
public sealed class FamilyForwardTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private readonly string _root = Path.Combine(
        Path.GetTempPath(),
        "explorer-families-" + Guid.NewGuid().ToString("N")
    );

    public void Dispose()
    {
        if (Directory.Exists(_root))
            Directory.Delete(_root, recursive: true);
    }

    internal static readonly int[] Tokens = [3, 17, 0, 25, 25, 39, 1, 8, 30, 12, 5, 22];

    internal static readonly Dictionary<string, FamilyCase> Cases = new FamilyCase[]
    {
        new("deepseek", "llama", Heads: 4, KvHeads: 4),
        new(
            "llama3",
            "llama",
            Theta: 500000,
            MaxPositions: 1024,
            RopeScaling: """
            {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}
            """
        ),
        new("llama-linear", "llama", RopeScaling: """{"type": "linear", "factor": 4.0}"""),
        new("llama-dynamic", "llama", MaxPositions: 8, RopeScaling: """{"rope_type": "dynamic", "factor": 2.0}"""),
        new(
            "llama-bias-headdim-tied",
            "llama",
            HeadDim: 12,
            ExplicitHeadDim: true,
            AttentionBias: true,
            MlpBias: true,
            Tied: true
        ),
        new("mistral", "mistral", Window: 4),
        new("qwen2", "qwen2", Layers: 3, QkvBias: true, Window: 3, FirstSliding: 1),
        new("qwen2-full", "qwen2", QkvBias: true),
        new("qwen3", "qwen3", HeadDim: 16, Eps: 1e-6),
        new("gemma", "gemma", Heads: 2, KvHeads: 1, HeadDim: 16, Tied: true, Act: "gelu_pytorch_tanh"),
        new("phi3", "phi3", Window: 5, Eps: 1e-5),
        new("olmo2", "olmo2", Eps: 1e-5),
    }.ToDictionary(c => c.Name);

    public static TheoryData<string, bool, int> Checkpoints()
    {
        var data = new TheoryData<string, bool, int>();
        foreach (var name in Cases.Keys)
        {
            data.Add(name, false, 1);
            data.Add(name, true, 3);
        }
        return data;
    }

    private (string Directory, Dictionary<string, double[]> Weights) Write(
        FamilyCase c,
        bool bf16,
        int shards,
        int seed = 5
    )
    {
        var directory = Path.Combine(_root, $"{c.Name}-{(bf16 ? "bf16" : "f32")}-{shards}");
        var weights = TestCheckpointWriter.RandomWeights(c, seed, bf16);
        TestCheckpointWriter.Write(directory, c, weights, bf16, shards);
        return (directory, weights);
    }

    private static DecoderTrace Trace(Decoder.Decoder decoder) =>
        decoder.Trace(
            TestModels.Tokens(Tokens.Select(t => (long)t).ToArray()),
            new TraceOptions
            {
                DeferredLensPositions = Enumerable.Range(0, Tokens.Length).ToArray(),
                LensPositions = [Tokens.Length - 1],
            }
        );

    /// <summary>max |a − r| / max |r|.</summary>
    private static double Relative(float[] actual, double[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(Math.Abs);
        return expected.Select((r, i) => Math.Abs(actual[i] - r)).Max() / Math.Max(scale, 1e-30);
    }

    private void AssertAgrees(DecoderTrace trace, FamilyReference.Result expected, string what)
    {
        double worstLogits = 0,
            worstResidual = 0;
        for (var i = 0; i < Tokens.Length; i++)
        {
            var error = Relative(trace.LogitsAt(i), expected.Logits[i]);
            Assert.True(error <= 1e-4, $"{what}: logits at position {i} differ by {error:E2} relative");
            worstLogits = Math.Max(worstLogits, error);
            for (var l = 0; l < expected.Residuals.Length; l++)
            {
                var residual = Relative(trace.DeferredResidual(l, i), expected.Residuals[l][i]);
                Assert.True(
                    residual <= 1e-4,
                    $"{what}: residual after layer {l} at position {i} differs by {residual:E2} relative"
                );
                worstResidual = Math.Max(worstResidual, residual);
            }
        }
        log.WriteLine($"{what}: worst relative error, logits {worstLogits:E2}, residuals {worstResidual:E2}");
    }

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void ResidentForwardMatchesTheReference(string name, bool bf16, int shards)
    {
        var c = Cases[name];
        var (directory, weights) = Write(c, bf16, shards);
        var expected = FamilyReference.Forward(c, weights, Tokens);
        using var decoder = Checkpoint.Load(directory, ScalarType.Float32);
        using var trace = Trace(decoder);
        AssertAgrees(trace, expected, $"{name} ({(bf16 ? "bf16" : "f32")} files, {shards} shard(s))");
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    [InlineData("gemma")]
    [InlineData("phi3")]
    [InlineData("olmo2")]
    public void StreamedForwardMatchesTheReference(string name)
    {
        var c = Cases[name];
        var (directory, weights) = Write(c, bf16: true, shards: 2);
        var expected = FamilyReference.Forward(c, weights, Tokens);
        using var decoder = Checkpoint.LoadStreamed(directory, ScalarType.Float32);
        Assert.True(decoder.IsStreamed);
        using var trace = Trace(decoder);
        AssertAgrees(trace, expected, $"{name} streamed");
    }

    public static TheoryData<string, string> Features() =>
        new()
        {
            { "llama3", "rope_scaling" },
            { "llama-linear", "rope_scaling" },
            { "llama-dynamic", "rope_scaling" },
            { "llama-bias-headdim-tied", "bias" },
            { "llama-bias-headdim-tied", "head_dim" },
            { "mistral", "window" },
            { "qwen2", "bias" },
            { "qwen2", "window" },
            { "qwen3", "qk_norm" },
            { "qwen3", "head_dim" },
            { "gemma", "one_plus" },
            { "gemma", "embed_scale" },
            { "phi3", "fused_order" },
            { "phi3", "window" },
            { "olmo2", "qk_norm" },
            { "olmo2", "branch_norms" },
        };

    /// <summary>The negative control of each feature: the reference without it disagrees with Explorer, so the
    /// agreement above depends on it.</summary>
    [Theory]
    [MemberData(nameof(Features))]
    public void EachFeatureChangesTheLogits(string name, string feature)
    {
        var c = Cases[name];
        var (directory, weights) = Write(c, bf16: false, shards: 1);
        var without = FamilyReference.Forward(c, weights, Tokens, feature);
        using var decoder = Checkpoint.Load(directory);
        using var trace = Trace(decoder);
        var worst = Enumerable.Range(0, Tokens.Length).Max(i => Relative(trace.LogitsAt(i), without.Logits[i]));
        Assert.True(
            worst > 1e-2,
            $"{name} without {feature} still agrees with Explorer ({worst:E2} relative): the test would "
                + "not catch it missing"
        );
    }

    [Fact]
    public void Llama3WithoutItsScalingIsADifferentModel()
    {
        // The bug this family support fixes: the same weights with rope_scaling dropped from config.json.
        var c = Cases["llama3"];
        var (scaled, weights) = Write(c, bf16: false, shards: 1);
        var plain = Path.Combine(_root, "llama3-unscaled");
        TestCheckpointWriter.Write(plain, c with { RopeScaling = null }, weights, bf16: false, shards: 1);
        using var a = Checkpoint.Load(scaled);
        using var b = Checkpoint.Load(plain);
        using var ta = Trace(a);
        using var tb = Trace(b);
        var last = Tokens.Length - 1;
        var expected = FamilyReference.Forward(c, weights, Tokens);
        Assert.True(Relative(ta.LogitsAt(last), expected.Logits[last]) <= 1e-4);
        Assert.True(Relative(tb.LogitsAt(last), expected.Logits[last]) > 1e-2);
    }

    [Theory]
    [InlineData("mistral", 0)]
    [InlineData("qwen2", 1)]
    [InlineData("phi3", 1)]
    public void SlidingWindowMapsGiveKeysOutsideTheWindowZero(string name, int layer)
    {
        var c = Cases[name];
        var window = c.Window!.Value;
        var (directory, _) = Write(c, bf16: false, shards: 1);
        using var decoder = Checkpoint.Load(directory);
        using var trace = Trace(decoder);
        int t = Tokens.Length;
        for (var h = 0; h < c.Heads; h++)
        {
            var map = trace.HeadMap(layer, h);
            for (var i = 0; i < t; i++)
            for (var j = 0; j < t; j++)
            {
                var inside = j <= i && j > i - window;
                if (inside)
                    Assert.True(
                        map[i * t + j] > 0,
                        $"{name} layer {layer} head {h}: key {j} of query {i} is inside the window but got 0"
                    );
                else
                    Assert.Equal(0f, map[i * t + j]);
            }
        }
    }

    [Fact]
    public void Qwen2FullAttentionLayersBelowMaxWindowLayersSeeEveryEarlierKey()
    {
        var c = Cases["qwen2"]; // max_window_layers 1: layer 0 attends fully
        var (directory, _) = Write(c, bf16: false, shards: 1);
        using var decoder = Checkpoint.Load(directory);
        using var trace = Trace(decoder);
        var map = trace.HeadMap(0, 0);
        var t = Tokens.Length;
        Assert.True(map[(t - 1) * t + 0] > 0);
    }

    [Fact]
    public void FamiliesAreReadAsTheirOwnDesign()
    {
        var specs = Cases.Values.ToDictionary(
            c => c.Name,
            c =>
            {
                var read = HfConfigReader.Read(c.ConfigJson(), c.Name);
                Assert.True(read.Succeeded, $"{c.Name}: {string.Join("; ", read.Errors)}");
                Assert.Empty(read.Warnings);
                return read.Spec!;
            }
        );
        Assert.Equal(RopeScalingKind.Llama3, specs["llama3"].RopeScaling!.Kind);
        Assert.Equal(64, specs["llama3"].RopeScaling!.OriginalContext);
        Assert.Equal(12, specs["llama-bias-headdim-tied"].HeadDim);
        Assert.Equal(AttentionBias.QueryKeyValue, specs["qwen2"].AttentionBias);
        Assert.Equal((3, 1), (specs["qwen2"].SlidingWindow!.Value, specs["qwen2"].FirstSlidingLayer));
        Assert.Null(specs["qwen2-full"].SlidingWindow);
        Assert.Equal(QkNorm.PerHead, specs["qwen3"].QkNorm);
        Assert.Equal(
            (NormScale.OnePlusWeight, true, Activation.GeluTanh),
            (specs["gemma"].NormScale, specs["gemma"].ScaleEmbedding, specs["gemma"].Activation)
        );
        Assert.True(specs["phi3"].FusedProjections);
        Assert.Equal(
            (NormPlacement.BranchOutput, QkNorm.AcrossHeads),
            (specs["olmo2"].NormPlacement, specs["olmo2"].QkNorm)
        );
    }

    [Fact]
    public void RandomCheckpointsOfEachFamilyLoadAsTheirFamilyWithItsTokenizer()
    {
        // What `explorer make-checkpoint` writes, at a vocabulary that holds its 258-token tokenizer.
        foreach (var c in Cases.Values)
        {
            var spec = HfConfigReader.Read((c with { Vocab = 300 }).ConfigJson(), c.Name).Spec!;
            var directory = Path.Combine(_root, "random-" + c.Name);
            RandomCheckpoint.Write(spec, directory, ScalarType.BFloat16, maxShardBytes: 16_000, seed: 3);
            using var live = LiveModel.FromCheckpoint(directory);
            Assert.Equal(spec with { Name = "x" }, live.Spec with { Name = "x" });
            Assert.Empty(live.ConfigWarnings);
            using var input = LiveModel.ToTensor(live.Encode("a the", 64));
            using var logits = live.Decoder.Logits(input);
            Assert.True(logits.isfinite().all().item<bool>(), c.Name);
        }
    }

    [Fact]
    public void WhatConfigJsonHeldAndWasIgnoredReachesTheLiveModel()
    {
        var c = Cases["deepseek"] with { Vocab = 300 };
        var spec = HfConfigReader.Read(c.ConfigJson(), c.Name).Spec!;
        var directory = Path.Combine(_root, "warned");
        RandomCheckpoint.Write(spec, directory, ScalarType.Float32, long.MaxValue, seed: 3);
        var config = Path.Combine(directory, Checkpoint.ConfigFile);
        File.WriteAllText(config, File.ReadAllText(config).TrimEnd().TrimEnd('}') + ", \"sliding_window\": 16}");
        using var live = LiveModel.FromCheckpoint(directory);
        Assert.Equal(
            "'sliding_window' = 16 ignored: LlamaForCausalLM in transformers does not read it.",
            Assert.Single(live.ConfigWarnings)
        );
        Assert.Null(live.Spec.SlidingWindow);
    }

    [Fact]
    public void HeadEntropyIsNormalisedByTheKeysAWindowedQuerySees()
    {
        // Queries of zero attend uniformly to every key they see: normalised entropy 1 whether the window cuts them or
        // not.
        var spec = HfConfigReader.Read(Cases["qwen2"].ConfigJson(), "qwen2").Spec!;
        using var decoder = TestModels.Build(spec);
        using (no_grad())
            foreach (var (name, parameter) in decoder.named_parameters().Where(p => p.name.Contains("q_proj")))
                parameter.zero_();
        using var trace = Trace(decoder);
        for (var l = 0; l < spec.Layers; l++)
        for (var h = 0; h < spec.AttentionHeads; h++)
            Assert.InRange(trace.HeadEntropy![l, h], 0.999f, 1.001f);
    }

    [Fact]
    public void WeightsInAnotherFamilysLayoutAreRefusedNamingEachTensor()
    {
        // A Phi-3 config over LLaMA-layout weights (separate q, k, v and gate, up): never run as some other model.
        var llamaLayout = Cases["deepseek"];
        var (directory, _) = Write(llamaLayout, bf16: false, shards: 1);
        File.WriteAllText(
            Path.Combine(directory, Checkpoint.ConfigFile),
            (llamaLayout with { Family = "phi3" }).ConfigJson()
        );
        var error = Assert.Throws<CheckpointException>(() => Checkpoint.Load(directory));
        Assert.Contains("model.layers.0.self_attn.qkv_proj.weight: missing", error.Message);
        Assert.Contains("model.layers.0.mlp.gate_up_proj.weight: missing", error.Message);
        Assert.Contains("model.layers.0.self_attn.q_proj.weight: unexpected", error.Message);
    }
}
