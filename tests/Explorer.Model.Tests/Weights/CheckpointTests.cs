using System.Text;
using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Tests;

public sealed class CheckpointTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-ckpt-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Folder(string name) => Directory.CreateDirectory(Path.Combine(_dir.FullName, name)).FullName;

    private static float[] Logits(Decoder.Decoder d) =>
        TestModels.ToArray(d.Logits(TestModels.Tokens(1, 4, 2, 8, 5, 7)));

    [Fact]
    public void Fp32RoundTripIsExact()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder("small");
        Checkpoint.Save(decoder, folder);
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));
        using var loaded = Checkpoint.Load(folder);
        Assert.Equal(ScalarType.Float32, loaded.DType);
        Assert.Equal(TestModels.Small with { Name = "small" }, loaded.Spec);
        Assert.Equal(Logits(decoder), Logits(loaded));
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void SixteenBitRoundTripKeepsTheRoundedValues(ScalarType type)
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder(type.ToString());
        Checkpoint.Save(decoder, folder, type);
        var header = SafetensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        Assert.All(header.Entries.Values, e => Assert.Equal(SafetensorsFile.FromScalarType(type), e.DType));
        using var loaded = Checkpoint.Load(folder, ScalarType.Float32);
        var original = decoder.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in loaded.named_parameters())
            Assert.Equal(TestModels.ToArray(original[name].to(type)), TestModels.ToArray(parameter));
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void ShardedSixteenBitRoundTripEqualsSingleFile(ScalarType type)
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var single = Folder($"single-{type}");
        var sharded = Folder($"sharded-{type}");
        Checkpoint.Save(decoder, single, type);
        Checkpoint.Save(decoder, sharded, type, maxShardBytes: 10_000);
        Assert.True(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length > 2);
        using var a = Checkpoint.Load(single, ScalarType.Float32);
        var reported = new List<double>();
        using var b = Checkpoint.Load(sharded, ScalarType.Float32, progress: new SyncProgress<double>(reported.Add));
        Assert.Equal(Logits(a), Logits(b));
        Assert.Equal(1.0, reported[^1], 9);
        Assert.Equal(reported.Order(), reported); // progress only grows
    }

    [Fact]
    public void ShardedRoundTripIsExact()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder("sharded");
        Checkpoint.Save(decoder, folder, maxShardBytes: 20_000);
        var shards = Directory.GetFiles(folder, "model-*-of-*.safetensors");
        Assert.True(shards.Length > 2);
        using (var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "model.safetensors.index.json"))))
        {
            var map = index
                .RootElement.GetProperty("weight_map")
                .EnumerateObject()
                .ToDictionary(p => p.Name, p => p.Value.GetString());
            Assert.Equal(decoder.named_parameters().Select(p => p.name).Order(), map.Keys.Order());
            Assert.All(map.Values, f => Assert.Contains(f, shards.Select(Path.GetFileName)));
        }
        using var loaded = Checkpoint.Load(folder);
        Assert.Equal(Logits(decoder), Logits(loaded));
    }

    // A raw safetensors file with a hand-written header, for the malformed-file suite.
    private string Raw(
        string name,
        string header,
        int dataBytes,
        long? claimedHeaderLength = null,
        byte[]? headerBytes = null
    )
    {
        var path = Path.Combine(_dir.FullName, name);
        var json = headerBytes ?? Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes(claimedHeaderLength ?? json.Length));
        stream.Write(json);
        stream.Write(new byte[dataBytes]);
        return path;
    }

    public static TheoryData<string, string, int, string> Malformed =>
        new()
        {
            { "not-json", "{\"a\": ", 0, "not valid JSON" },
            { "array", "[1, 2]", 0, "must be a JSON object" },
            {
                "unknown-dtype",
                """{"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}""",
                2,
                "dtype 'F8_E4M3' is not supported"
            },
            {
                "out-of-range",
                """{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""",
                8,
                "go beyond the data (8 bytes)"
            },
            {
                "overlap",
                """
                    {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2],
                    "data_offsets": [4, 12]}}
                    """,
                12,
                "overlap a [0, 8)"
            },
            {
                "size-mismatch",
                """{"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}}""",
                8,
                "needs 6 bytes"
            },
            {
                "backwards",
                """{"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}""",
                8,
                "are not an interval"
            },
            {
                "negative-shape",
                """{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}""",
                4,
                "non-negative integers"
            },
            { "no-offsets", """{"w": {"dtype": "F32", "shape": [1]}}""", 4, "data_offsets must be" },
            { "entry-not-object", """{"w": 3}""", 0, "must be an object" },
        };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedHeadersAreRejectedWithTheirOwnMessage(
        string name,
        string header,
        int dataBytes,
        string message
    )
    {
        var e = Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(Raw(name, header, dataBytes)));
        Assert.Contains(message, e.Message);
        Assert.Contains(name, e.Message); // names the file
    }

    [Fact]
    public void HeaderLengthBeyondTheFileIsRejected()
    {
        var e = Assert.Throws<CheckpointException>(() =>
            SafetensorsFile.Open(Raw("long", "{}", 0, claimedHeaderLength: 1_000_000))
        );
        Assert.Contains("header length 1,000,000 goes beyond the end of the file", e.Message);
    }

    [Fact]
    public void TooShortAndNonUtf8AreRejected()
    {
        var shortFile = Path.Combine(_dir.FullName, "short.safetensors");
        File.WriteAllBytes(shortFile, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(shortFile)).Message);
        var bad = Raw("latin1", "", 0, headerBytes: [(byte)'{', 0xC3, 0x28, (byte)'}']);
        Assert.Contains("not valid UTF-8", Assert.Throws<CheckpointException>(() => SafetensorsFile.Open(bad)).Message);
    }

    [Fact]
    public void TruncatedCheckpointIsRejected()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder("truncated");
        Checkpoint.Save(decoder, folder);
        var file = Path.Combine(folder, "model.safetensors");
        using (var stream = new FileStream(file, FileMode.Open))
            stream.SetLength(stream.Length - 100);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("lm_head.weight", e.Message); // the last tensor is the one cut
    }

    [Fact]
    public void MissingUnexpectedAndMisshapedTensorsAreListedByName()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder("mismatch");
        var tensors = decoder
            .named_parameters()
            .Where(p => p.name != "model.layers.1.mlp.up_proj.weight")
            .Select(p => (p.name, p.parameter.detach()))
            .Append(("model.layers.7.mlp.up_proj.weight", torch.zeros(2, 2)))
            .Select(t => t.Item1 == "model.norm.weight" ? (t.Item1, torch.ones(31)) : t)
            .ToList();
        SafetensorsFile.Write(Path.Combine(folder, "model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(folder, "config.json"), HfConfigWriter.ToJson(TestModels.Small));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder));
        Assert.Contains("model.layers.1.mlp.up_proj.weight: missing (expected shape [64, 32])", e.Message);
        Assert.Contains("model.layers.7.mlp.up_proj.weight: unexpected", e.Message);
        Assert.Contains("model.norm.weight: shape [31] in model.safetensors, expected [32]", e.Message);
        Assert.Equal(3, e.Problems.Count);
    }

    [Fact]
    public void IndexCannotPointOutsideTheFolder()
    {
        using var decoder = TestModels.Build(TestModels.Small);
        var folder = Folder("escape");
        Checkpoint.Save(decoder, folder, maxShardBytes: 20_000);
        var indexPath = Path.Combine(folder, "model.safetensors.index.json");
        File.WriteAllText(indexPath, File.ReadAllText(indexPath).Replace("\"model-00001-of-", "\"../model-00001-of-"));
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder));
        Assert.Contains("must be a .safetensors file name in the checkpoint folder", e.Message);
    }

    [Fact]
    public void MissingOrInvalidConfigIsNamed()
    {
        var empty = Folder("empty");
        Assert.Contains("has no config.json", Assert.Throws<CheckpointException>(() => Checkpoint.Load(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "config.json"), """{"hidden_size": 32}""");
        Assert.Contains("intermediate_size", Assert.Throws<CheckpointException>(() => Checkpoint.Load(empty)).Message);
        File.WriteAllText(Path.Combine(empty, "config.json"), HfConfigWriter.ToJson(TestModels.Small));
        Assert.Contains(
            "neither model.safetensors nor",
            Assert.Throws<CheckpointException>(() => Checkpoint.Load(empty)).Message
        );
    }

    [Fact]
    public void ACheckpointLargerThanMemoryIsRefusedBeforeAnythingIsAllocated()
    {
        // The 67B's config beside a one-tensor file: refused on its size, before shapes are checked or memory taken.
        var folder = Folder("huge");
        using (var decoder = TestModels.Build(TestModels.Small))
            Checkpoint.Save(decoder, folder, ScalarType.BFloat16);
        File.WriteAllText(
            Path.Combine(folder, "config.json"),
            HfConfigWriter.ToJson(ModelPresets.DeepSeekLlm67B, "bfloat16")
        );
        var needed = 67_425_001_472L * 2; // bf16: the exact count of the 67B times two bytes
        var e = Assert.Throws<CheckpointException>(() =>
            Checkpoint.CheckMemory(folder, ModelPresets.DeepSeekLlm67B, ScalarType.BFloat16, availableBytes: needed - 1)
        );
        Assert.Contains($"{needed / (double)(1L << 30):0.0} GiB in BFloat16", e.Message);
        // exactly enough: fine
        Checkpoint.CheckMemory(folder, ModelPresets.DeepSeekLlm67B, ScalarType.BFloat16, availableBytes: needed);
        if (Checkpoint.AvailableMemoryBytes() < needed)
            Assert.Contains(
                "GiB of memory are available",
                Assert.Throws<CheckpointException>(() => Checkpoint.Load(folder)).Message
            );
    }
}
