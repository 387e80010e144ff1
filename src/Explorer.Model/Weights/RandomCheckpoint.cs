using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>
/// Writes a Hugging Face-layout checkpoint of any shape with random weights (normal, std 0.02; norms 1, or 0 where the
/// family stores w − 1), tensor by tensor, so a full-size 7B or a cut 67B can be made on a machine smaller than the
/// model: load and speed can be measured on real shapes without downloading one. Its tokenizer.json is byte-level with
/// 256 byte tokens and two special tokens, far fewer than the model's vocabulary, as in checkpoints that pad their
/// vocabulary.
/// </summary>
public static class RandomCheckpoint
{
    public const double WeightStd = 0.02;
    public const int TokenizerTokens = 258;
    private const int ChunkElements = 16 << 20;

    /// <summary>Writes config.json, the safetensors shards (index included when there are several) and
    /// tokenizer.json.</summary>
    public static void Write(
        ModelSpec spec,
        string directory,
        ScalarType dtype,
        long maxShardBytes,
        ulong seed,
        IProgress<double>? progress = null,
        CancellationToken cancellation = default
    )
    {
        if (maxShardBytes < 1)
            throw new ArgumentOutOfRangeException(
                nameof(maxShardBytes),
                maxShardBytes,
                "Shards must hold at least one byte."
            );
        var torchName = dtype switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            ScalarType.Float32 => "float32",
            _ => throw new ArgumentException(
                $"dtype {dtype} is not written here; use Float32, Float16 or BFloat16.",
                nameof(dtype)
            ),
        };
        var config = HfConfigWriter.ToJson(spec, torchName); // validates the shape first
        List<SafetensorsFile.TensorLayout> layout;
        using (var shapes = Decoder.Decoder.Create(spec, new DecoderOptions { Device = META }))
            layout = shapes
                .named_parameters()
                .Select(p => new SafetensorsFile.TensorLayout(p.name, dtype, p.parameter.shape))
                .ToList();

        var shards = new List<List<SafetensorsFile.TensorLayout>> { new() };
        long current = 0;
        foreach (var tensor in layout)
        {
            if (current > 0 && current + tensor.Bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(tensor);
            current += tensor.Bytes;
        }
        Directory.CreateDirectory(directory);
        var total = layout.Sum(t => t.Bytes);
        long written = 0;
        var generator = new Generator(seed, CPU);
        using var std = WeightStd.ToScalar(); // held for every call that reads it (Decoder.HeldScalars)
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var offsetNorms = spec.NormScale == NormScale.OnePlusWeight; // Gemma stores w − 1: a fresh norm is zero
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        for (var i = 0; i < shards.Count; i++)
        {
            var file = shards.Count == 1 ? Checkpoint.SingleFile : $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            var shard = shards[i];
            SafetensorsFile.Write(
                Path.Combine(directory, file),
                shard,
                (t, stream) =>
                {
                    var tensor = shard[t];
                    var elements = tensor.Shape.Aggregate(1L, (a, b) => a * b);
                    var isNorm = tensor.Name.EndsWith("norm.weight", StringComparison.Ordinal);
                    for (long start = 0; start < elements; start += ChunkElements)
                    {
                        cancellation.ThrowIfCancellationRequested();
                        using var scope = NewDisposeScope();
                        var count = Math.Min(ChunkElements, elements - start);
                        var values = isNorm
                            ? (offsetNorms ? torch.zeros(count) : torch.ones(count))
                            : torch.randn(count, generator: generator).mul_(std);
                        stream.Write(values.to(dtype).bytes);
                        written += count * (tensor.Bytes / Math.Max(1, elements));
                        progress?.Report(total == 0 ? 1 : (double)written / total);
                    }
                },
                metadata
            );
            foreach (var tensor in shard)
                weightMap[tensor.Name] = file;
        }
        if (shards.Count > 1)
        {
            var index = JsonSerializer.Serialize(
                new { metadata = new { total_size = total }, weight_map = weightMap },
                new JsonSerializerOptions { WriteIndented = true }
            );
            File.WriteAllText(Path.Combine(directory, Checkpoint.IndexFile), index);
        }
        File.WriteAllText(Path.Combine(directory, HfTokenizer.FileName), ByteLevelTokenizerJson());
        File.WriteAllText(Path.Combine(directory, Checkpoint.ConfigFile), config);
    }

    /// <summary>A byte-level BPE tokenizer.json: the 256 bytes (ids 0–255), no merges, two special tokens (256,
    /// 257).</summary>
    public static string ByteLevelTokenizerJson()
    {
        var vocab = new Dictionary<string, int>();
        for (var b = 0; b < 256; b++)
            vocab[ByteLevel.ToChar((byte)b).ToString()] = b;
        var byteLevel = new
        {
            type = "ByteLevel",
            add_prefix_space = false,
            trim_offsets = true,
            use_regex = true,
        };
        var json = new
        {
            version = "1.0",
            truncation = (object?)null,
            padding = (object?)null,
            added_tokens = new[]
            {
                new
                {
                    id = 256,
                    content = "<｜begin▁of▁sentence｜>",
                    single_word = false,
                    lstrip = false,
                    rstrip = false,
                    normalized = false,
                    special = true,
                },
                new
                {
                    id = 257,
                    content = "<｜end▁of▁sentence｜>",
                    single_word = false,
                    lstrip = false,
                    rstrip = false,
                    normalized = false,
                    special = true,
                },
            },
            normalizer = (object?)null,
            pre_tokenizer = byteLevel,
            post_processor = (object?)null,
            decoder = byteLevel,
            model = new
            {
                type = "BPE",
                dropout = (object?)null,
                unk_token = (object?)null,
                continuing_subword_prefix = (object?)null,
                end_of_word_suffix = (object?)null,
                fuse_unk = false,
                byte_fallback = false,
                vocab,
                merges = Array.Empty<string>(),
            },
        };
        return JsonSerializer.Serialize(json);
    }
}
