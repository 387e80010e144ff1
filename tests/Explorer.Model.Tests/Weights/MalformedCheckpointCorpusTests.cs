using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Explorer.Core.Specs;
using Explorer.Model.Hosting;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests.Weights;

/// <summary>
/// A corpus of broken checkpoints and tokenizer files, each made deterministically from a good checkpoint by one
/// change. Every one must be refused through the path the app and the CLI load by (<see
/// cref="LiveModel.FromCheckpoint"/>) with a <see cref="CheckpointException"/> whose message names the culprit: the
/// file, and the tensor or field.
/// </summary>
public sealed class MalformedCheckpointCorpusTests : IDisposable
{
    // Small, with a vocabulary larger than the test tokenizer's few tokens (a padded vocabulary, as DeepSeek's).
    private static readonly ModelSpec Shape = TestModels.Small with { VocabularySize = 300 };
    private const string Single = "model.safetensors";
    private const string Config = "config.json";
    private const string Tokenizer = "tokenizer.json";

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-corpus-");

    public void Dispose() => _dir.Delete(recursive: true);

    public sealed record Case(string Name, Action<string> Break, params string[] Culprits)
    {
        public override string ToString() => Name;
    }

    // --- helpers that break a good checkpoint in one way ---------------------------------------------------------

    /// <summary>Replaces model.safetensors with a hand-written header over <paramref name="dataBytes"/> zero
    /// bytes.</summary>
    private static Action<string> RawHeader(string header, int dataBytes, long? claimedLength = null) =>
        folder =>
        {
            var json = Encoding.UTF8.GetBytes(header);
            using var stream = File.Create(Path.Combine(folder, Single));
            stream.Write(BitConverter.GetBytes(claimedLength ?? json.Length));
            stream.Write(json);
            stream.Write(new byte[dataBytes]);
        };

    /// <summary>One F32 entry named like a real parameter, with the given JSON fields.</summary>
    private static Action<string> Entry(string fields, int dataBytes, string name = "model.norm.weight") =>
        RawHeader("{\"" + name + "\": {" + fields + "}}", dataBytes);

    /// <summary>A header of two F32 entries with the given offsets.</summary>
    private static Action<string> Two(int n, (int, int) a, (int, int) b, int dataBytes) =>
        RawHeader(
            "{"
                + string.Join(
                    ", ",
                    new[] { ("a.weight", a), ("b.weight", b) }.Select(e =>
                        $"\"{e.Item1}\": {{{Ok("F32", n)}, \"data_offsets\": [{e.Item2.Item1}, {e.Item2.Item2}]}}"
                    )
                )
                + "}",
            dataBytes
        );

    /// <summary>Rewrites the tensors of model.safetensors, changing the one called <paramref name="name"/>.</summary>
    private static Action<string> Tensor(string name, Func<Tensor, Tensor> change, ScalarType? dtype = null) =>
        folder =>
        {
            var path = Path.Combine(folder, Single);
            using var live = LiveModel.FromCheckpoint(folder);
            var tensors = live
                .Decoder.named_parameters()
                .Select(p => (p.name, t: (dtype is { } d ? p.parameter.detach().to(d) : p.parameter.detach()).clone()))
                .Select(p => p.name == name ? (p.name, change(p.t)) : p)
                .ToList();
            SafetensorsFile.Write(path, tensors);
        };

    private static Action<string> Sharded(Func<JsonNode, JsonNode> changeIndex) =>
        folder =>
        {
            Reshard(folder);
            var index = Path.Combine(folder, Checkpoint.IndexFile);
            File.WriteAllText(index, changeIndex(JsonNode.Parse(File.ReadAllText(index))!).ToJsonString());
        };

    private static void Reshard(string folder)
    {
        using (var live = LiveModel.FromCheckpoint(folder))
        {
            File.Delete(Path.Combine(folder, Single));
            Checkpoint.Save(live.Decoder, folder, maxShardBytes: 20_000);
        }
        File.WriteAllText(Path.Combine(folder, Config), HfConfigWriter.ToJson(Shape));
    }

    private static Action<string> Text(string file, string text) =>
        folder => File.WriteAllText(Path.Combine(folder, file), text);

    /// <summary>A byte-level tokenizer.json of 256 byte tokens and one special token, with <paramref name="change"/>
    /// applied.</summary>
    private static Action<string> TokenizerWith(Action<JsonObject> change) =>
        folder =>
        {
            var json = JsonNode.Parse(RandomCheckpoint.ByteLevelTokenizerJson())!.AsObject();
            change(json);
            File.WriteAllText(Path.Combine(folder, Tokenizer), json.ToJsonString());
        };

    private static JsonObject Vocab(JsonObject tokenizer) => tokenizer["model"]!["vocab"]!.AsObject();

    private static string Ok(string dtype, int n) => $"\"dtype\": \"{dtype}\", \"shape\": [{n}]";

    public static TheoryData<Case> Cases()
    {
        var cases = new List<Case>
        {
            // safetensors: the file and its header
            new("header not JSON", RawHeader("{\"a\": ", 0), Single, "not valid JSON"),
            new("header is an array", RawHeader("[1, 2]", 0), Single, "must be a JSON object"),
            new("header is a string", RawHeader("\"weights\"", 0), Single, "must be a JSON object"),
            new(
                "header length beyond the file",
                RawHeader("{}", 0, claimedLength: 1_000_000),
                Single,
                "header length 1,000,000"
            ),
            new(
                "header length near 2^64",
                RawHeader("{}", 0, claimedLength: -2),
                Single,
                "goes beyond the end of the file"
            ),
            new(
                "file of 3 bytes",
                folder => File.WriteAllBytes(Path.Combine(folder, Single), [1, 2, 3]),
                Single,
                "too short"
            ),
            new("empty file", folder => File.WriteAllBytes(Path.Combine(folder, Single), []), Single, "too short"),
            new(
                "header not UTF-8",
                folder =>
                {
                    using var stream = File.Create(Path.Combine(folder, Single));
                    stream.Write(BitConverter.GetBytes(4L));
                    stream.Write([(byte)'{', 0xC3, 0x28, (byte)'}']);
                },
                Single,
                "not valid UTF-8"
            ),
            new(
                "duplicate key",
                RawHeader(
                    "{\"model.norm.weight\": {"
                        + Ok("F32", 1)
                        + ", \"data_offsets\": [0, 4]}, \"model.norm.weight\": {"
                        + Ok("F32", 1)
                        + ", \"data_offsets\": [4, 8]}}",
                    8
                ),
                Single,
                "model.norm.weight",
                "more than once"
            ),
            new(
                "byte size overflows 64 bits",
                Entry("\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 0]", 0),
                Single,
                "model.norm.weight",
                "does not fit in 64 bits"
            ),
            new(
                "shape product overflows",
                Entry("\"dtype\": \"BF16\", \"shape\": [9223372036854775807, 2], \"data_offsets\": [0, 0]", 0),
                Single,
                "model.norm.weight",
                "too large"
            ),
            new(
                "offsets are strings",
                Entry($"{Ok("F32", 2)}, \"data_offsets\": [\"0\", \"8\"]", 8),
                Single,
                "model.norm.weight",
                "data_offsets must be an array of two integers"
            ),
            new(
                "offsets are fractions",
                Entry($"{Ok("F32", 2)}, \"data_offsets\": [0, 7.5]", 8),
                Single,
                "model.norm.weight",
                "data_offsets must be"
            ),
            new(
                "offsets negative",
                Entry($"{Ok("F32", 2)}, \"data_offsets\": [-8, 0]", 8),
                Single,
                "model.norm.weight",
                "not an interval"
            ),
            new(
                "three offsets",
                Entry($"{Ok("F32", 2)}, \"data_offsets\": [0, 4, 8]", 8),
                Single,
                "model.norm.weight",
                "data_offsets must be"
            ),
            new(
                "offsets an object",
                Entry($"{Ok("F32", 2)}, \"data_offsets\": {{\"begin\": 0}}", 8),
                Single,
                "model.norm.weight",
                "data_offsets must be"
            ),
            new("offsets missing", Entry(Ok("F32", 2), 8), Single, "model.norm.weight", "data_offsets must be"),
            new(
                "offsets backwards",
                Entry($"{Ok("F32", 0)}, \"data_offsets\": [8, 4]", 8),
                Single,
                "model.norm.weight",
                "not an interval"
            ),
            new(
                "offsets beyond the data",
                Entry($"{Ok("F32", 4)}, \"data_offsets\": [0, 16]", 8),
                Single,
                "model.norm.weight",
                "go beyond the data"
            ),
            new("offsets overlap", Two(2, (0, 8), (4, 12), 12), Single, "b.weight", "overlap a.weight"),
            new("gap between tensors", Two(1, (0, 4), (8, 12), 12), Single, "b.weight", "gap"),
            new(
                "gap before the first tensor",
                Entry($"{Ok("F32", 1)}, \"data_offsets\": [4, 8]", 8),
                Single,
                "model.norm.weight",
                "gap"
            ),
            new(
                "bytes after the last tensor",
                Entry($"{Ok("F32", 1)}, \"data_offsets\": [0, 4]", 12),
                Single,
                "the last 8 bytes",
                "belong to no tensor"
            ),
            new(
                "dtype unsupported",
                Entry("\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]", 2),
                Single,
                "model.norm.weight",
                "F8_E4M3"
            ),
            new(
                "dtype integer",
                Entry("\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]", 8),
                Single,
                "model.norm.weight",
                "'I64' is not supported"
            ),
            new(
                "dtype not a string",
                Entry("\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]", 4),
                Single,
                "model.norm.weight",
                "dtype is missing or not a string"
            ),
            new(
                "shape missing",
                Entry("\"dtype\": \"F32\", \"data_offsets\": [0, 4]", 4),
                Single,
                "model.norm.weight",
                "shape is missing"
            ),
            new(
                "shape negative",
                Entry("\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]", 4),
                Single,
                "model.norm.weight",
                "non-negative integers"
            ),
            new(
                "shape fractional",
                Entry("\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]", 4),
                Single,
                "model.norm.weight",
                "non-negative integers"
            ),
            new(
                "shape of strings",
                Entry("\"dtype\": \"F32\", \"shape\": [\"32\"], \"data_offsets\": [0, 128]", 128),
                Single,
                "model.norm.weight",
                "non-negative integers"
            ),
            new(
                "shape of 65 dimensions",
                Entry(
                    $"\"dtype\": \"F32\", \"shape\": [{string.Join(", ", Enumerable.Repeat(1, 65))}], "
                        + "\"data_offsets\": [0, 4]",
                    4
                ),
                Single,
                "model.norm.weight",
                "65 dimensions"
            ),
            new(
                "dtype, shape and offsets disagree",
                Entry("\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [0, 8]", 8),
                Single,
                "model.norm.weight",
                "needs 6 bytes"
            ),
            new(
                "entry not an object",
                RawHeader("""{"model.norm.weight": 3}""", 0),
                Single,
                "model.norm.weight",
                "must be an object"
            ),
            new(
                "metadata not an object",
                RawHeader("""{"__metadata__": [1]}""", 0),
                Single,
                "__metadata__",
                "must be an object of strings"
            ),
            new(
                "truncated file",
                folder =>
                {
                    using var stream = new FileStream(Path.Combine(folder, Single), FileMode.Open);
                    stream.SetLength(stream.Length - 100);
                },
                Single,
                "lm_head.weight",
                "truncated"
            ),
            // the tensors against config.json
            new(
                "tensor missing",
                folder =>
                {
                    using var live = LiveModel.FromCheckpoint(folder);
                    SafetensorsFile.Write(
                        Path.Combine(folder, Single),
                        live.Decoder.named_parameters()
                            .Where(p => p.name != "model.layers.0.mlp.up_proj.weight")
                            .Select(p => (p.name, p.parameter.detach().clone()))
                            .ToList()
                    );
                },
                "model.layers.0.mlp.up_proj.weight",
                "missing"
            ),
            new(
                "tensor unexpected",
                folder =>
                {
                    using var live = LiveModel.FromCheckpoint(folder);
                    SafetensorsFile.Write(
                        Path.Combine(folder, Single),
                        live.Decoder.named_parameters()
                            .Select(p => (p.name, p.parameter.detach().clone()))
                            .Append(("model.layers.9.mlp.up_proj.weight", torch.zeros(2, 2)))
                            .ToList()
                    );
                },
                "model.layers.9.mlp.up_proj.weight",
                "unexpected"
            ),
            new(
                "tensor mis-shaped",
                Tensor("model.norm.weight", _ => torch.ones(31)),
                Single,
                "model.norm.weight",
                "shape [31]",
                "expected [32]"
            ),
            new(
                "tensor transposed",
                Tensor("model.layers.1.mlp.down_proj.weight", t => t.t().contiguous()),
                "model.layers.1.mlp.down_proj.weight",
                "shape [64, 32]",
                "expected [32, 64]"
            ),
            // weights that are not numbers
            new("NaN in a q_proj", Tensor("model.layers.0.self_attn.q_proj.weight", t =>
                {
                    t[3, 5] = torch.tensor(float.NaN);
                    return t;
                }), "model.layers.0.self_attn.q_proj.weight", Single, "1 NaN and 0 infinite"),
            new("Inf in the LM head", Tensor("lm_head.weight", t =>
                {
                    t[0, 0] = torch.tensor(float.PositiveInfinity);
                    t[7, 1] = torch.tensor(float.NegativeInfinity);
                    return t;
                }), "lm_head.weight", "0 NaN and 2 infinite"),
            new(
                "NaN everywhere in a norm",
                Tensor("model.layers.2.post_attention_layernorm.weight", t => t.fill_(float.NaN)),
                "model.layers.2.post_attention_layernorm.weight",
                "32 NaN"
            ),
            new(
                "NaN in a bf16 embedding",
                Tensor(
                    "model.embed_tokens.weight",
                    t =>
                    {
                        t[299, 31] = torch.tensor(float.NaN);
                        return t;
                    },
                    ScalarType.BFloat16
                ),
                "model.embed_tokens.weight",
                "1 NaN"
            ),
            new(
                "Inf in an fp16 down_proj",
                Tensor(
                    "model.layers.1.mlp.down_proj.weight",
                    t =>
                    {
                        t[31, 63] = torch.tensor(float.PositiveInfinity);
                        return t;
                    },
                    ScalarType.Float16
                ),
                "model.layers.1.mlp.down_proj.weight",
                "1 infinite"
            ),
            // shards and their index
            new(
                "index not JSON",
                folder =>
                {
                    Reshard(folder);
                    File.WriteAllText(Path.Combine(folder, Checkpoint.IndexFile), "{\"weight_map\": ");
                },
                Checkpoint.IndexFile,
                "not valid JSON"
            ),
            new(
                "index without weight_map",
                Sharded(_ => new JsonObject { ["metadata"] = new JsonObject() }),
                Checkpoint.IndexFile,
                "no weight_map"
            ),
            new(
                "index points out of the folder",
                Sharded(index =>
                {
                    var map = index["weight_map"]!.AsObject();
                    map["lm_head.weight"] = "../" + map["lm_head.weight"]!.GetValue<string>();
                    return index;
                }),
                "lm_head.weight",
                "must be a .safetensors file name in the checkpoint folder"
            ),
            new(
                "index names a shard that is not there",
                Sharded(index =>
                {
                    index["weight_map"]!.AsObject()["model.norm.weight"] = "model-00099-of-00099.safetensors";
                    return index;
                }),
                "model-00099-of-00099.safetensors",
                "does not exist"
            ),
            new(
                "index places a tensor in the wrong shard",
                Sharded(index =>
                {
                    var map = index["weight_map"]!.AsObject();
                    map["lm_head.weight"] = map["model.embed_tokens.weight"]!.GetValue<string>();
                    return index;
                }),
                "lm_head.weight",
                "does not hold it"
            ),
            new(
                "shard holds a tensor the index omits",
                Sharded(index =>
                {
                    index["weight_map"]!.AsObject().Remove("model.norm.weight");
                    return index;
                }),
                "model.norm.weight",
                "not in model.safetensors.index.json"
            ),
            new(
                "shard map value not a string",
                Sharded(index =>
                {
                    index["weight_map"]!.AsObject()["model.norm.weight"] = 5;
                    return index;
                }),
                "model.norm.weight",
                "must be a .safetensors file name"
            ),
            // config.json
            new("config missing", folder => File.Delete(Path.Combine(folder, Config)), "has no config.json"),
            new("config not JSON", Text(Config, "{\"hidden_size\": "), Config, "not valid JSON"),
            new(
                "config field not a number",
                folder =>
                    File.WriteAllText(
                        Path.Combine(folder, Config),
                        HfConfigWriter.ToJson(Shape).Replace("\"hidden_size\": 32", "\"hidden_size\": \"32\"")
                    ),
                Config,
                "hidden_size"
            ),
            new(
                "config field missing",
                folder =>
                    File.WriteAllText(
                        Path.Combine(folder, Config),
                        HfConfigWriter.ToJson(Shape).Replace("\"intermediate_size\": 64,", "")
                    ),
                Config,
                "intermediate_size"
            ),
            new(
                "no weights at all",
                folder => File.Delete(Path.Combine(folder, Single)),
                "neither model.safetensors nor"
            ),
            // tokenizer.json
            new(
                "token id 2^31 - 1",
                TokenizerWith(t => Vocab(t)["x"] = int.MaxValue),
                Tokenizer,
                "model.vocab[\"x\"]",
                "2147483647",
                "[0, 300)"
            ),
            new(
                "token id 3e8",
                TokenizerWith(t => Vocab(t)["x"] = 300_000_000),
                Tokenizer,
                "model.vocab[\"x\"]",
                "300000000"
            ),
            new(
                "token id 2^40",
                TokenizerWith(t => Vocab(t)["x"] = 1L << 40),
                Tokenizer,
                "model.vocab[\"x\"]",
                "1099511627776"
            ),
            new("token id negative", TokenizerWith(t => Vocab(t)["x"] = -1), Tokenizer, "model.vocab[\"x\"]", "-1"),
            new("token id a string", TokenizerWith(t => Vocab(t)["x"] = "7"), Tokenizer, "model.vocab[\"x\"]", "\"7\""),
            new("token id fractional", TokenizerWith(t => Vocab(t)["x"] = 7.5), Tokenizer, "model.vocab[\"x\"]", "7.5"),
            new(
                "token id equal to vocab_size",
                TokenizerWith(t => Vocab(t)["x"] = 300),
                Tokenizer,
                "model.vocab[\"x\"]",
                "300",
                "vocab_size"
            ),
            new("two tokens share an id", TokenizerWith(t => Vocab(t)["x"] = 7), Tokenizer, "id 7", "\"x\""),
            new(
                "added token beyond the vocabulary",
                TokenizerWith(t =>
                    t["added_tokens"]!.AsArray().Add(new JsonObject { ["id"] = 100_000, ["content"] = "<pad>" })
                ),
                Tokenizer,
                "added_tokens[2].id",
                "100000"
            ),
            new(
                "added token without content",
                TokenizerWith(t => t["added_tokens"]!.AsArray().Add(new JsonObject { ["id"] = 258 })),
                Tokenizer,
                "added_tokens[2]",
                "content"
            ),
            new(
                "added tokens not an array",
                TokenizerWith(t => t["added_tokens"] = new JsonObject()),
                Tokenizer,
                "added_tokens must be an array"
            ),
            new(
                "tokenizer without model.vocab",
                TokenizerWith(t => t["model"]!.AsObject().Remove("vocab")),
                Tokenizer,
                "no model.vocab"
            ),
            new("tokenizer not JSON", Text(Tokenizer, "{\"model\": "), Tokenizer, "not valid JSON"),
            new("tokenizer is an array", Text(Tokenizer, "[]"), Tokenizer, "no model.vocab"),
            new(
                "tokenizer nested 100 deep",
                Text(Tokenizer, new string('[', 100) + new string(']', 100)),
                Tokenizer,
                "not valid JSON"
            ),
            new(
                "mini marker on a smaller vocabulary",
                folder =>
                {
                    File.Delete(Path.Combine(folder, Tokenizer));
                    File.WriteAllText(Path.Combine(folder, MiniTokenizer.MarkerFile), MiniTokenizer.MarkerText);
                },
                MiniTokenizer.MarkerFile,
                "4,096 tokens",
                "vocab_size is 300"
            ),
        };
        var data = new TheoryData<Case>();
        foreach (var c in cases)
            data.Add(c);
        return data;
    }

    [Fact]
    public void TheCorpusHoldsAtLeastFiftyDistinctCases()
    {
        var names = ((IEnumerable<object[]>)Cases()).Select(c => ((Case)c[0]).Name).ToArray();
        Assert.True(names.Length >= 50, $"{names.Length} cases");
        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public void TheUnbrokenCheckpointLoads()
    {
        var folder = Good("good");
        using var live = LiveModel.FromCheckpoint(folder);
        Assert.Equal(300, live.Spec.VocabularySize);
        Assert.Equal(RandomCheckpoint.TokenizerTokens, live.Tokenizer!.VocabularySize);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EachBrokenCheckpointIsRefusedNamingItsCulprit(Case broken)
    {
        var folder = Good(broken.Name.Replace(' ', '-'));
        broken.Break(folder);
        var e = Assert.Throws<CheckpointException>(() => LiveModel.FromCheckpoint(folder).Dispose());
        foreach (var culprit in broken.Culprits)
            Assert.Contains(culprit, e.Message);
        // Read by a person: no parameter name or type name of .NET's.
        Assert.DoesNotContain("(Parameter", e.Message);
        Assert.DoesNotContain("Exception", e.Message);
    }

    [Fact]
    public void ATokenizerWithManyProblemsListsEveryOneInTheOneForm()
    {
        // 117 extra tokens with ids past the model's 300 rows: one problem each, every one listed.
        var folder = Good("many-problems");
        TokenizerWith(json =>
        {
            for (var i = 0; i < 117; i++)
                Vocab(json)[$"extra{i}"] = Shape.VocabularySize + i;
        })(folder);
        var e = Assert.Throws<CheckpointException>(() => LiveModel.FromCheckpoint(folder).Dispose());
        var (summary, problems) = Explorer.Core.Formatting.ProblemText.Split(e.Message);
        Assert.EndsWith("tokenizer.json cannot be used:", summary);
        Assert.Equal(117, problems.Count);
        Assert.Equal(117, problems.Distinct().Count());
        Assert.Contains(problems, p => p.Contains("model.vocab[\"extra116\"] is 416", StringComparison.Ordinal));
    }

    private string Good(string name)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;
        using (var decoder = TestModels.Build(Shape))
            Checkpoint.Save(decoder, folder);
        File.WriteAllText(Path.Combine(folder, Tokenizer), RandomCheckpoint.ByteLevelTokenizerJson());
        return folder;
    }
}
