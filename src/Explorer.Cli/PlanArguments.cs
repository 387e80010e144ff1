using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Cli;

/// <summary>The options `plan` and `export` share, and how they become a plan request.</summary>
public sealed class PlanArguments
{
    private readonly Option<string> _model = new("--model", "-m")
    {
        Description =
            "A preset to cost from its shape (deepseek-llm-7b, deepseek-llm-67b, llama-2-7b, llama-2-70b, or a mini).",
    };
    private readonly Option<FileInfo> _costs = new("--costs")
    {
        Description =
            "A JSON array of per-unit times in ms, or of unit objects {name, kind, forward, "
            + "inputGradient, weightGradient, parameters, activationBytes}.",
    };
    private readonly Option<int> _stages = new("--stages", "-p")
    {
        Description = "Pipeline stages (devices).",
        Required = true,
    };
    private readonly Option<int> _microbatches = new("--microbatches")
    {
        Description = "Micro-batches per step.",
        DefaultValueFactory = _ => 8,
    };
    private readonly Option<string> _schedule = new("--schedule")
    {
        Description = "gpipe, 1f1b, interleaved, zb-h1, interleaved-zb, zbv, dualpipev or dualpipe.",
        DefaultValueFactory = _ => "1f1b",
    };
    private readonly Option<int> _virtual = new("--virtual")
    {
        Description = "Model chunks per device (interleaved, interleaved-zb); zbv and dualpipev place 2 in a V.",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<string> _method = new("--method")
    {
        Description = "uniform, parameters or optimal.",
        DefaultValueFactory = _ => "optimal",
    };
    private readonly Option<string> _memory = new("--memory")
    {
        Description = "Device memory, bytes (or with a unit: 80GiB, 80GB).",
    };
    private readonly Option<int> _seq = new("--seq")
    {
        Description = "Sequence length.",
        DefaultValueFactory = _ => 4096,
    };
    private readonly Option<int> _mbs = new("--mbs")
    {
        Description = "Micro-batch size (sequences).",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<double> _tflops = new("--tflops")
    {
        Description = "Sustained device TFLOP/s.",
        DefaultValueFactory = _ => 400,
    };
    private readonly Option<string> _flops = new("--flops")
    {
        Description = "zero-bubble (F, B, W as written) or megatron (the backward also runs the recomputed forward).",
        DefaultValueFactory = _ => "zero-bubble",
    };
    private readonly Option<double> _transfer = new("--transfer")
    {
        Description = "Point-to-point transfer time between devices, ms.",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<bool> _embedding = new("--account-for-embedding")
    {
        Description = "Uniform: count the embedding as a layer (Megatron-LM).",
    };
    private readonly Option<bool> _loss = new("--account-for-loss")
    {
        Description = "Uniform: count the loss as a layer (Megatron-LM).",
    };

    public void AddTo(Command command)
    {
        foreach (
            var option in new Option[]
            {
                _model,
                _costs,
                _stages,
                _microbatches,
                _schedule,
                _virtual,
                _method,
                _memory,
                _seq,
                _mbs,
                _tflops,
                _flops,
                _transfer,
                _embedding,
                _loss,
            }
        )
            command.Options.Add(option);
    }

    public int MicroBatchSize(ParseResult result) => result.GetValue(_mbs);

    /// <summary>A published shape or a mini by name, or an error listing them.</summary>
    public static ModelSpec Preset(string model) => KnownModels.Get(model);

    public PlanRequest Request(ParseResult result)
    {
        var model = result.GetValue(_model);
        var costs = result.GetValue(_costs);
        if ((model is null) == (costs is null))
            throw new ArgumentException("Give exactly one of --model NAME or --costs FILE.");
        var settings = new CostSettings
        {
            SequenceLength = result.GetValue(_seq),
            MicroBatchSize = result.GetValue(_mbs),
            DeviceTflops = result.GetValue(_tflops),
            Flops = result.GetValue(_flops)!.Trim().ToLowerInvariant() switch
            {
                "zero-bubble" => FlopConvention.ZeroBubble,
                "megatron" => FlopConvention.Megatron,
                var other => throw new ArgumentException($"--flops '{other}': use zero-bubble or megatron."),
            },
        };
        IReadOnlyList<PipelineUnit> units;
        if (model is not null)
        {
            units = CostModel.Units(Preset(model), settings);
        }
        else
            units = ReadCosts(costs!);
        var method = result.GetValue(_method)!.Trim().ToLowerInvariant() switch
        {
            "uniform" => PartitionMethod.Uniform,
            "parameters" => PartitionMethod.Parameters,
            "optimal" => PartitionMethod.Optimal,
            var other => throw new ArgumentException($"--method '{other}': use uniform, parameters or optimal."),
        };
        return new PlanRequest
        {
            Units = units,
            Stages = result.GetValue(_stages),
            MicroBatches = result.GetValue(_microbatches),
            Schedule = ScheduleNames.Parse(result.GetValue(_schedule)!),
            VirtualStages = result.GetValue(_virtual),
            Method = method,
            Uniform = new UniformPartitioner(result.GetValue(_embedding), result.GetValue(_loss)),
            MemoryBudgetBytes = result.GetValue(_memory) is { } memory ? ParseBytes(memory) : null,
            TransferMs = result.GetValue(_transfer),
            TokensPerMicroBatch = (long)settings.SequenceLength * settings.MicroBatchSize,
        };
    }

    public static long ParseBytes(string text)
    {
        var t = text.Trim();
        (string Suffix, double Factor)[] units =
        [
            ("GiB", 1L << 30),
            ("MiB", 1L << 20),
            ("KiB", 1L << 10),
            ("GB", 1e9),
            ("MB", 1e6),
            ("KB", 1e3),
            ("B", 1),
        ];
        foreach (var (suffix, factor) in units)
            if (
                t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
                && value > 0
            )
                return (long)(value * factor);
        if (long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes) && bytes > 0)
            return bytes;
        throw new ArgumentException(
            $"--memory '{text}': give a positive number of bytes, or one with a unit (80GiB, 80GB, 512MiB)."
        );
    }

    /// <summary>Reads a costs file: numbers (per-unit F + B + W in ms) or unit objects.</summary>
    public static IReadOnlyList<PipelineUnit> ReadCosts(FileInfo file)
    {
        if (!file.Exists)
            throw new ArgumentException($"--costs {file.FullName}: no such file.");
        if (file.Length > 64L << 20)
            throw new ArgumentException(
                $"--costs {file.FullName}: {file.Length:N0} bytes is more than the 64 MiB a costs file may have."
            );
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(file.FullName));
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"--costs {file.Name} is not valid JSON: {e.Message.Split(" Path:")[0]}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array || doc.RootElement.GetArrayLength() == 0)
                throw new ArgumentException(
                    $"--costs {file.Name} must be a non-empty JSON array of numbers or unit objects."
                );
            var items = doc.RootElement.EnumerateArray().ToArray();
            if (items.All(i => i.ValueKind == JsonValueKind.Number))
                return CostModel.FromTimes(items.Select(i => i.GetDouble()).ToArray());
            var units = new List<PipelineUnit>();
            for (var i = 0; i < items.Length; i++)
            {
                var item = items[i];
                if (item.ValueKind != JsonValueKind.Object)
                    throw new ArgumentException(
                        $"--costs {file.Name}: item {i} is {item.ValueKind}; use all numbers or all objects."
                    );
                double Number(string name, double fallback)
                {
                    if (!item.TryGetProperty(name, out var v))
                        return fallback;
                    if (v.ValueKind != JsonValueKind.Number || !double.IsFinite(v.GetDouble()) || v.GetDouble() < 0)
                        throw new ArgumentException(
                            $"--costs {file.Name}: item {i} has {name} = {v.GetRawText()}; it must be a number ≥ 0."
                        );
                    return v.GetDouble();
                }
                if (!item.TryGetProperty("forward", out _))
                    throw new ArgumentException($"--costs {file.Name}: item {i} has no forward time.");
                var kindText =
                    item.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String
                        ? k.GetString()!
                        : "Layer";
                if (!Enum.TryParse<UnitKind>(kindText, true, out var kind))
                    throw new ArgumentException(
                        $"--costs {file.Name}: item {i} has kind '{kindText}'; use embedding, layer, head or loss."
                    );
                var forward = Number("forward", 0);
                units.Add(
                    new PipelineUnit(
                        item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String
                            ? n.GetString()!
                            : $"unit.{i}",
                        kind,
                        forward,
                        Number("inputGradient", Number("backward", forward)),
                        Number("weightGradient", forward),
                        (long)Number("parameters", 0),
                        (long)Number("activationBytes", 0)
                    )
                );
            }
            return units;
        }
    }
}
