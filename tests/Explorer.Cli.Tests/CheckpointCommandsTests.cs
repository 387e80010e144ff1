using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Cli.Tests;

/// <summary><c>explorer make-checkpoint</c>, <c>bench --weights</c> and <c>forward</c> on checkpoints as users bring
/// them.</summary>
public sealed class CheckpointCommandsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-cli-ckpt-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Made(string name, int layers = 3)
    {
        var folder = Path.Combine(_dir.FullName, name);
        var (code, output, error) = Cli.Run(
            "make-checkpoint",
            "--shape",
            "deepseek-7b-mini",
            "--layers",
            layers.ToString(),
            "--out",
            folder,
            "--shard-gb",
            "0.0005"
        );
        Assert.True(code == 0, error);
        Assert.Contains("done in", output);
        return folder;
    }

    [Fact]
    public void ForwardSaysWhatConfigJsonHeldThatTheFamilyDoesNotRead()
    {
        var folder = Made("warned", layers: 1);
        var config = Path.Combine(folder, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).TrimEnd().TrimEnd('}') + ", \"sliding_window\": 16}");
        var (code, _, error) = Cli.Run("forward", "--weights", folder, "--prompt", "Hi", "--device", "cpu");
        Assert.True(code == 0, error);
        Assert.Contains(
            "warning: 'sliding_window' = 16 ignored: LlamaForCausalLM in transformers does not read it.",
            error
        );
    }

    [Fact]
    public void ATokenizerWithManyProblemsIsRefusedWithEveryProblemListed()
    {
        var folder = Made("many-problems", layers: 1);
        var tokenizer = Path.Combine(folder, "tokenizer.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(tokenizer))!;
        var vocabulary = MiniPresets.DeepSeek7BMini.VocabularySize;
        for (var i = 0; i < 117; i++)
            json["model"]!["vocab"]![$"extra{i}"] = vocabulary + i;
        File.WriteAllText(tokenizer, json.ToJsonString());
        var (code, _, error) = Cli.Run("forward", "--weights", folder, "--prompt", "Hi", "--device", "cpu");
        Assert.Equal(ExitCodes.BadInput, code);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("error: ", lines[0]);
        Assert.EndsWith("tokenizer.json cannot be used:", lines[0]);
        // Every problem on its own line, the last one included; nothing of .NET's in the message.
        Assert.Equal(117, lines.Count(l => l.StartsWith("  ", StringComparison.Ordinal) && l.Contains("model.vocab")));
        Assert.Contains(lines, l => l.Contains($"model.vocab[\"extra116\"] is {vocabulary + 116}"));
        Assert.DoesNotContain("(Parameter", error);
    }

    [Fact]
    public void HelpListsEveryVerbOnceByWhatItDoes()
    {
        var (code, output, _) = Cli.Run("--help");
        Assert.Equal(0, code);
        foreach (var (group, verbs) in ExplorerCommand.Groups)
            Assert.Contains($"  {group, -12} {string.Join(", ", verbs)}", output);
        var grouped = ExplorerCommand.Groups.SelectMany(g => g.Verbs).ToList();
        var commands = ExplorerCommand.Create(TextWriter.Null, TextWriter.Null).Subcommands.Select(c => c.Name);
        Assert.Equal(grouped.Order(), commands.Order());
        Assert.Equal(grouped.Count, grouped.Distinct().Count());
    }

    [Fact]
    public void ForwardRefusesARopeScalingItCannotComputeNamingIt()
    {
        var folder = Made("yarn", layers: 1);
        var config = Path.Combine(folder, "config.json");
        File.WriteAllText(
            config,
            File.ReadAllText(config)
                .Replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}")
        );
        var (code, _, error) = Cli.Run("forward", "--weights", folder, "--prompt", "Hi", "--device", "cpu");
        Assert.NotEqual(0, code);
        Assert.Contains("rope_scaling.rope_type = \"yarn\"", error);
        Assert.Contains("supported: \"default\", \"linear\", \"dynamic\" or \"llama3\"", error);
    }

    [Fact]
    public void MakeCheckpointWritesShardsOfTheExactParameterCountWithAPaddedVocabulary()
    {
        var folder = Made("cut");
        // 3 layers of the 7B-mini (d 64, FFN 172, 4/4 heads): q, k, v, o are 64×64, gate/up/down 64×172, two norms;
        // a tied 4,096 × 64 embedding and the final norm. bf16: two bytes each.
        const long perLayer = 4 * 64 * 64 + 3 * 64 * 172 + 2 * 64;
        const long parameters = 3 * perLayer + 4096 * 64 + 64;
        var shards = Directory.GetFiles(folder, "model-*-of-*.safetensors");
        Assert.True(shards.Length > 1, $"{shards.Length} shards");
        var entries = shards.SelectMany(s => SafetensorsFile.Open(s).Entries.Values).ToArray();
        Assert.Equal(parameters * 2, entries.Sum(e => e.End - e.Begin));
        Assert.All(entries, e => Assert.Equal("BF16", e.DType));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        Assert.Equal(3, config.RootElement.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal(4096, config.RootElement.GetProperty("vocab_size").GetInt32());

        // The tokenizer holds 258 tokens, the model 4,096 rows: predictions past the tokenizer print as ids.
        var (code, output, error) = Cli.Run(
            "forward",
            "--weights",
            folder,
            "--prompt",
            "Hello",
            "--top",
            "20",
            "--device",
            "cpu"
        );
        Assert.True(code == 0, error);
        Assert.Contains("H | e | l | l | o", output);
        Assert.Matches(@"\b(\d{3,4})\s+<id \1>", output);
    }

    [Fact]
    public void BenchWeightsReportsLoadAgainstARawReadAndEachLength()
    {
        var folder = Made("bench", layers: 2);
        var json = Path.Combine(_dir.FullName, "bench.json");
        var (code, output, error) = Cli.Run(
            "bench",
            "--weights",
            folder,
            "--lengths",
            "4,16",
            "--repeats",
            "1",
            "--json",
            json
        );
        Assert.True(code == 0, error);
        Assert.Contains("the raw read", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.True(root.GetProperty("loadSeconds").GetDouble() > 0);
        Assert.True(root.GetProperty("rawReadSeconds").GetDouble() > 0);
        var weightBytes = Directory.GetFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Assert.Equal(weightBytes, root.GetProperty("weightBytes").GetInt64());
        // The weights are mapped and brought in at load: resident memory holds at least them.
        Assert.True(root.GetProperty("residentBytes").GetInt64() >= weightBytes);
        var forwards = root.GetProperty("forwards").EnumerateArray().ToArray();
        Assert.Equal([4, 16], forwards.Select(f => f.GetProperty("tokens").GetInt32()));
        Assert.All(forwards, f =>
        {
            Assert.True(f.GetProperty("fusedMs").GetDouble() > 0);
            Assert.InRange(f.GetProperty("lensMs").GetDouble(), 0, f.GetProperty("tracedMs").GetDouble());
        });
    }

    [Fact]
    public void ForwardStreamedPrintsWhatTheResidentForwardPrints()
    {
        var folder = Made("streamed", layers: 4);
        var resident = Cli.Run(
            "forward",
            "--weights",
            folder,
            "--prompt",
            "Hello there",
            "--top",
            "10",
            "--device",
            "cpu"
        );
        var streamed = Cli.Run("forward", "--weights", folder, "--prompt", "Hello there", "--top", "10", "--stream");
        Assert.True(resident.Code == 0, resident.Err);
        Assert.True(streamed.Code == 0, streamed.Err);
        // The same ranks, ids, probabilities and logits to the printed digit: the same layers on the same values.
        Assert.Equal(resident.Out, streamed.Out);

        var mini = Cli.Run("forward", "--model", "deepseek-7b-mini", "--prompt", "Hi", "--stream");
        Assert.Equal(ExitCodes.BadInput, mini.Code);
        Assert.Contains("--stream reads a checkpoint's layers from its files: give --weights DIR", mini.Err);
    }

    [Fact]
    public void BenchInterventionsTimesEachSweepAgainstAForwardAndAttributionStreamed()
    {
        var folder = Made("bench-interventions", layers: 4);
        var json = Path.Combine(_dir.FullName, "interventions.json");
        var (code, output, error) = Cli.Run(
            "bench",
            "--suite",
            "interventions",
            "--weights",
            folder,
            "--stream",
            "--lengths",
            "8",
            "--repeats",
            "1",
            "--json",
            json
        );
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var rows = doc.RootElement.EnumerateArray().ToArray();
        Assert.Equal(
            [
                "residual (exact)",
                "heads (zero ablation)",
                "residual (attribution)",
                "heads (zero ablation)",
                "residual (attribution), streamed",
            ],
            rows.Select(r => r.GetProperty("Sweep").GetString())
        );
        foreach (var row in rows)
        {
            // Sites as the sweep defines them: (L + 1) · T boundaries × positions, or L · H heads.
            int layers = row.GetProperty("Layers").GetInt32(),
                tokens = row.GetProperty("Tokens").GetInt32();
            // both minis have 4 query heads
            var heads = row.GetProperty("Sweep").GetString()!.StartsWith("heads") ? 4 : 0;
            Assert.Equal(8, tokens);
            Assert.Equal(heads > 0 ? layers * heads : (layers + 1) * tokens, row.GetProperty("Sites").GetInt64());
            Assert.Equal(
                row.GetProperty("SweepMs").GetDouble() / row.GetProperty("ForwardMs").GetDouble(),
                row.GetProperty("Ratio").GetDouble(),
                9
            );
        }
        Assert.Equal(4, rows[^1].GetProperty("Layers").GetInt32());

        var odd = Cli.Run("bench", "--suite", "interventions", "--lengths", "7");
        Assert.Equal(2, odd.Code);
        Assert.Contains("--lengths 7: the interventions suite takes one even length from 4 to 512 tokens.", odd.Err);
    }

    [Fact]
    public void BenchStreamedReportsBothBoundsOverlapMemoryAndEqualLogits()
    {
        var folder = Made("bench-streamed", layers: 4);
        var json = Path.Combine(_dir.FullName, "streamed.json");
        var (code, output, error) = Cli.Run(
            "bench",
            "--weights",
            folder,
            "--stream",
            "--lengths",
            "8",
            "--repeats",
            "1",
            "--json",
            json
        );
        Assert.True(code == 0, error);
        Assert.Contains("logits equal to resident", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(4, root.GetProperty("layers").GetInt32());
        // One layer of the 7B-mini in bf16: 4·64² + 3·64·172 + 2·64 parameters, two bytes each.
        Assert.Equal((4 * 64 * 64 + 3 * 64 * 172 + 2 * 64) * 2L, root.GetProperty("layerBytes").GetInt64());
        // A 4-layer mini's layers fit in any page cache: a streamed load maps them.
        Assert.Equal("mapped", root.GetProperty("autoLoading").GetString());
        // One row per way of loading the layers: mapped, then read.
        var forwards = root.GetProperty("forwards").EnumerateArray().ToArray();
        Assert.Equal(["mapped", "read"], forwards.Select(f => f.GetProperty("loading").GetString()));
        foreach (var forward in forwards)
        {
            Assert.True(forward.GetProperty("equalLogits").GetBoolean());
            Assert.True(forward.GetProperty("residentMs").GetDouble() > 0);
            var streamedMs = forward.GetProperty("streamedMs").GetDouble();
            Assert.InRange(forward.GetProperty("waitingMs").GetDouble(), 0, streamedMs);
            Assert.InRange(forward.GetProperty("computeMs").GetDouble(), 0, streamedMs);
            Assert.InRange(forward.GetProperty("overlap").GetDouble(), 0, 1);
            // The resident forward's memory, all of it and the anonymous part of it.
            var anonymous = forward.GetProperty("residentPeakAnonymousBytes").GetInt64();
            Assert.InRange(anonymous, 1, forward.GetProperty("residentPeakBytes").GetInt64());
        }

        var bare = Cli.Run("bench", "--stream");
        Assert.Equal(ExitCodes.BadInput, bare.Code);
        Assert.Contains("--stream benchmarks a checkpoint run layer by layer: give --weights DIR", bare.Err);
    }

    [Fact]
    public void InfiniteLogitsAreDumpedAsNamedLiterals()
    {
        // Finite weights whose products overflow fp32: token 7's logit is ±Inf, or NaN where +Inf meets −Inf.
        var spec = MiniPresets.DeepSeek7BMini with { Layers = 1, TiedEmbeddings = false };
        var folder = Path.Combine(_dir.FullName, "overflow");
        using (var decoder = Model.Decoder.Decoder.Create(spec))
        {
            using (torch.no_grad())
            {
                var head = decoder.named_parameters().Single(p => p.name == "lm_head.weight").parameter;
                head[7].fill_(3e38f);
                decoder.named_parameters().Single(p => p.name == "model.norm.weight").parameter.fill_(100f);
            }
            Checkpoint.Save(decoder, folder);
        }
        var dump = Path.Combine(_dir.FullName, "dump.json");
        var (code, output, error) = Cli.Run(
            "forward",
            "--weights",
            folder,
            "--tokens",
            "5,17,400",
            "--dump",
            dump,
            "--device",
            "cpu"
        );
        Assert.True(code == 0, error);
        using var doc = JsonDocument.Parse(File.ReadAllText(dump));
        var logit = doc.RootElement.GetProperty("logits")[7];
        Assert.Equal(JsonValueKind.String, logit.ValueKind);
        Assert.Contains(logit.GetString(), new[] { "Infinity", "-Infinity", "NaN" });
        Assert.Equal(
            ["<id 5>", "<id 17>", "<id 400>"],
            doc.RootElement.GetProperty("pieces").EnumerateArray().Select(p => p.GetString())
        );
    }

    [Theory]
    [InlineData("--layers", "0", "--layers 0")]
    [InlineData("--layers", "31", "keep 1 to 30")]
    [InlineData("--shape", "gpt-5", "--shape 'gpt-5'")]
    [InlineData("--dtype", "int8", "--dtype 'int8'")]
    [InlineData("--shard-gb", "0", "--shard-gb 0")]
    public void MakeCheckpointRefusesBadValuesNamingThem(string option, string value, string message)
    {
        var args = new Dictionary<string, string>
        {
            ["--shape"] = "deepseek-llm-7b",
            ["--out"] = Path.Combine(_dir.FullName, "x"),
            [option] = value,
        };
        var (code, _, error) = Cli.Run(["make-checkpoint", .. args.SelectMany(a => new[] { a.Key, a.Value })]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.False(
            Directory.Exists(Path.Combine(_dir.FullName, "x"))
                && Directory.EnumerateFileSystemEntries(Path.Combine(_dir.FullName, "x")).Any()
        );
    }

    [Fact]
    public void MakeCheckpointWillNotWriteIntoAFolderThatHoldsFiles()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_dir.FullName, "busy")).FullName;
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine");
        var (code, _, error) = Cli.Run("make-checkpoint", "--shape", "deepseek-7b-mini", "--out", folder);
        Assert.Equal(2, code);
        Assert.Contains("is not empty", error);
        Assert.Equal(["notes.txt"], Directory.GetFiles(folder).Select(Path.GetFileName));
    }
}
