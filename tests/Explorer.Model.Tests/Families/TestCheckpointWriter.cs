using System.Text;
using System.Text.Json;

namespace Explorer.Model.Tests.Families;

/// <summary>
/// Writes a checkpoint folder in the layout transformers' save_pretrained writes (config.json, model.safetensors or
/// shards with model.safetensors.index.json), from the test's own weights, with its own safetensors writer: an 8-byte
/// little-endian header length, the JSON header, the raw little-endian data.
/// </summary>
internal static class TestCheckpointWriter
{
    /// <summary>Random weights for every tensor of the case, rounded to bf16 when the files will hold bf16 (so the
    /// reference uses what the files hold).</summary>
    public static Dictionary<string, double[]> RandomWeights(FamilyCase c, int seed, bool bf16)
    {
        var random = new Random(seed);
        double Normal() =>
            Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var weights = new Dictionary<string, double[]>();
        foreach (var (name, shape) in c.WeightShapes())
        {
            var count = shape.Aggregate(1, (a, b) => a * b);
            var isNorm = name.EndsWith("norm.weight", StringComparison.Ordinal);
            var values = new double[count];
            for (var i = 0; i < count; i++)
                values[i] = isNorm
                    // norms away from their neutral value
                    ? (c.OnePlusNorm ? random.NextDouble() - 0.5 : 0.5 + random.NextDouble())
                    : Normal() * (name.Contains("embed_tokens", StringComparison.Ordinal) ? 1.0 : 0.3);
            weights[name] = bf16
                ? values.Select(v => (double)FromBf16(ToBf16((float)v))).ToArray()
                : values.Select(v => (double)(float)v).ToArray();
        }
        return weights;
    }

    public static void Write(
        string directory,
        FamilyCase c,
        IReadOnlyDictionary<string, double[]> weights,
        bool bf16,
        int shards
    )
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(
            Path.Combine(directory, "config.json"),
            c.ConfigJson().Replace("\"float32\"", bf16 ? "\"bfloat16\"" : "\"float32\"")
        );
        var tensors = c.WeightShapes().ToList();
        var perShard = (tensors.Count + shards - 1) / shards;
        if (shards == 1)
        {
            WriteFile(Path.Combine(directory, "model.safetensors"), tensors, weights, bf16);
            return;
        }
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (var s = 0; s < shards; s++)
        {
            var file = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var part = tensors.Skip(s * perShard).Take(perShard).ToList();
            WriteFile(Path.Combine(directory, file), part, weights, bf16);
            foreach (var (name, _) in part)
                map[name] = file;
        }
        File.WriteAllText(
            Path.Combine(directory, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map })
        );
    }

    private static void WriteFile(
        string path,
        List<(string Name, int[] Shape)> tensors,
        IReadOnlyDictionary<string, double[]> weights,
        bool bf16
    )
    {
        var size = bf16 ? 2 : 4;
        var header = new Dictionary<string, object>
        {
            ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" },
        };
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = weights[name].Length * size;
            header[name] = new
            {
                dtype = bf16 ? "BF16" : "F32",
                shape,
                data_offsets = new[] { offset, offset + bytes },
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((long)json.Length));
        stream.Write(json);
        foreach (var (name, _) in tensors)
        foreach (var v in weights[name])
            stream.Write(bf16 ? BitConverter.GetBytes(ToBf16((float)v)) : BitConverter.GetBytes((float)v));
    }

    /// <summary>float → bfloat16 bits, rounding to nearest even (as torch's .to(bfloat16)).</summary>
    public static ushort ToBf16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float FromBf16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
