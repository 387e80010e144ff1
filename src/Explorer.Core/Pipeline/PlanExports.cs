using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Explorer.Core.Pipeline;

/// <summary>An export: the text a tool accepts, or the rule the plan breaks for that tool.</summary>
public sealed record ExportResult(string Format, string? Text, string? Refusal)
{
    public bool Succeeded => Text is not null;
    public static ExportResult Ok(string format, string text) => new(format, text, null);
    public static ExportResult Refuse(string format, string why) => new(format, null, why);
}

/// <summary>Writes a plan for the engines people train with: Megatron-LM, DeepSpeed, torchtitan, or Explorer's own JSON.</summary>
public static class PlanExports
{
    public static IReadOnlyList<string> Formats { get; } = ["megatron", "deepspeed", "torchtitan", "json"];

    public static ExportResult Export(PlanReport report, string format) => format.Trim().ToLowerInvariant() switch
    {
        "megatron" => Megatron(report),
        "deepspeed" => DeepSpeed(report),
        "torchtitan" => Torchtitan(report),
        "json" => ExportResult.Ok("json", PlanDocument.From(report).ToJson()),
        _ => throw new ArgumentException($"Unknown export format '{format}'. Use one of: {string.Join(", ", Formats)}."),
    };

    /// <summary>
    /// Megatron-LM arguments. A uniform plan uses its flags; any other plan is spelled out with
    /// <c>--pipeline-model-parallel-layout</c> (E the embedding, t a decoder layer, L the output layer with the loss).
    /// </summary>
    public static ExportResult Megatron(PlanReport report)
    {
        var r = report.Request;
        var plan = report.Plan;
        var layers = plan.Units.Count(u => u.Kind == UnitKind.Layer);
        if (r.Schedule == ScheduleKind.ZeroBubbleH1)
            return ExportResult.Refuse("megatron", "Megatron-LM's pipeline schedules are 1F1B and interleaved 1F1B; it has no ZB-H1 (choose 1f1b or interleaved).");
        if (r.Schedule == ScheduleKind.GPipe)
            return ExportResult.Refuse("megatron", "Megatron-LM does not run GPipe; its schedules are 1F1B and interleaved 1F1B.");
        var args = new StringBuilder();
        args.Append($"--pipeline-model-parallel-size {r.Stages} --num-layers {layers} --num-microbatches {r.MicroBatches}");
        if (plan.Method == "uniform" && r.Schedule == ScheduleKind.OneFOneB)
        {
            var u = r.Uniform;
            if (u.AccountForEmbedding) args.Append(" --account-for-embedding-in-pipeline-split");
            if (u.AccountForLoss) args.Append(" --account-for-loss-in-pipeline-split");
            if (u.FirstStageLayers is { } first) args.Append($" --decoder-first-pipeline-num-layers {first}");
            if (u.LastStageLayers is { } last) args.Append($" --decoder-last-pipeline-num-layers {last}");
            return ExportResult.Ok("megatron", args.ToString());
        }
        var stages = new List<string>();
        foreach (var stage in plan.Stages)
        {
            var text = new StringBuilder();
            for (var i = stage.FirstUnit; i <= stage.LastUnit; i++)
            {
                var unit = plan.Units[i];
                switch (unit.Kind)
                {
                    case UnitKind.Embedding:
                        if (stage.Index != 0)
                            return ExportResult.Refuse("megatron", "Megatron-LM places the embedding (E) on the first stage; this plan does not.");
                        text.Append('E');
                        break;
                    case UnitKind.Layer:
                        text.Append('t');
                        break;
                    case UnitKind.Head:
                        var lossHere = i + 1 <= stage.LastUnit && plan.Units[i + 1].Kind == UnitKind.Loss;
                        var lossExists = plan.Units.Any(x => x.Kind == UnitKind.Loss);
                        if (lossExists && !lossHere)
                            return ExportResult.Refuse("megatron", "Megatron-LM computes the output layer and the loss together (L): keep norm+lm_head and the loss in one stage.");
                        text.Append('L');
                        break;
                    case UnitKind.Loss:
                        if (i == stage.FirstUnit)
                            return ExportResult.Refuse("megatron", "Megatron-LM computes the output layer and the loss together (L): keep norm+lm_head and the loss in one stage.");
                        break;
                }
            }
            stages.Add(text.ToString());
        }
        if (!stages[^1].EndsWith('L') && plan.Units.Any(u => u.Kind == UnitKind.Head))
            return ExportResult.Refuse("megatron", "Megatron-LM places the output layer and loss (L) on the last stage; this plan does not.");
        if (r.Schedule == ScheduleKind.Interleaved1F1B)
            args.Append($" --virtual-pipeline-model-parallel-size {r.VirtualStages}");
        args.Append($" --pipeline-model-parallel-layout \"{string.Join('|', stages)}\"");
        return ExportResult.Ok("megatron", args.ToString());
    }

    /// <summary>
    /// DeepSpeed <c>PipelineModule</c> settings. DeepSpeed partitions by 'uniform', 'parameters' or 'type:REGEX'
    /// only, so a plan exports when it is what one of those produces; otherwise the refusal says so.
    /// </summary>
    public static ExportResult DeepSpeed(PlanReport report)
    {
        var r = report.Request;
        var plan = report.Plan;
        if (r.Schedule != ScheduleKind.OneFOneB)
            return ExportResult.Refuse("deepspeed", $"DeepSpeed's pipeline engine runs its own 1F1B schedule (TrainSchedule); {ScheduleNames.Name(r.Schedule)} cannot be exported to it.");
        // DeepSpeed's layer list: every unit but the loss, which is PipelineModule's loss_fn on the last stage.
        var layers = plan.Units.Where(u => u.Kind != UnitKind.Loss).ToArray();
        if (plan.Units.Count > 0 && plan.Units[^1].Kind == UnitKind.Loss && plan.Stages[^1].UnitCount == 1)
            return ExportResult.Refuse("deepspeed", "DeepSpeed runs the loss on the last stage with its last layers; a stage holding only the loss cannot be expressed.");
        var parts = plan.Stages.Select(s => Math.Min(s.FirstUnit, layers.Length)).Append(layers.Length).ToArray();
        string method;
        if (parts.SequenceEqual(DeepSpeedUniformParts(layers.Length, r.Stages)))
            method = "uniform";
        else if (BalancedPartitioner.Parameters().Partition(layers, r.Stages).Plan is { } balanced
                 && balanced.Stages.Select(s => s.FirstUnit).Append(layers.Length).SequenceEqual(parts))
            method = "parameters";
        else
            return ExportResult.Refuse("deepspeed",
                $"DeepSpeed PipelineModule partitions only by 'uniform', 'parameters' or 'type:REGEX', and this plan (parts [{string.Join(", ", parts)}]) is none of them. Use the parameters or uniform method, or set PipelineModule.parts yourself.");
        return ExportResult.Ok("deepspeed", $"PipelineModule(layers=layers, num_stages={r.Stages}, partition_method='{method}', loss_fn=loss_fn)  # parts = [{string.Join(", ", parts)}]");
    }

    /// <summary>DeepSpeed's ds_utils.partition_uniform: equal counts, the first (n mod p) parts one larger.</summary>
    public static int[] DeepSpeedUniformParts(int items, int parts)
    {
        var result = new int[parts + 1];
        if (items <= parts)
        {
            for (var p = 0; p <= parts; p++) result[p] = Math.Min(p, items);
            return result;
        }
        var chunk = items / parts;
        var residual = items - chunk * parts;
        for (var p = 1; p <= parts; p++)
            result[p] = result[p - 1] + chunk + (p <= residual ? 1 : 0);
        return result;
    }

    /// <summary>torchtitan's [parallelism] settings: split points at decoder layers, and the schedule.</summary>
    public static ExportResult Torchtitan(PlanReport report)
    {
        var r = report.Request;
        var plan = report.Plan;
        var schedule = r.Schedule switch
        {
            ScheduleKind.GPipe => "GPipe",
            ScheduleKind.OneFOneB => "1F1B",
            ScheduleKind.Interleaved1F1B => "Interleaved1F1B",
            _ => null,
        };
        if (schedule is null)
            return ExportResult.Refuse("torchtitan", "torch.distributed.pipelining has no ZB-H1 schedule; its zero-bubble schedules are ScheduleInterleavedZeroBubble and ScheduleZBVZeroBubble. Choose gpipe, 1f1b or interleaved.");
        var points = new List<string>();
        foreach (var stage in plan.Stages.Skip(1))
        {
            var unit = plan.Units[stage.FirstUnit];
            if (unit.Kind != UnitKind.Layer)
                return ExportResult.Refuse("torchtitan", $"torchtitan splits before decoder layers; stage {stage.Index} starts at {unit.Name}. Keep the head and loss with the last layers.");
            points.Add($"\"{unit.ModulePath}\"");
        }
        var text = new StringBuilder();
        text.AppendLine("[parallelism]");
        text.AppendLine($"pipeline_parallel_degree = {r.Stages}");
        text.AppendLine($"pipeline_parallel_split_points = [{string.Join(", ", points)}]");
        text.AppendLine($"pipeline_parallel_schedule = \"{schedule}\"");
        return ExportResult.Ok("torchtitan", text.ToString());
    }
}

/// <summary>Explorer's own plan file: the units and their costs, the stages, and the schedule. Loads back exactly.</summary>
public sealed record PlanDocument(
    int Version,
    IReadOnlyList<PlanDocument.UnitEntry> Units,
    int Stages,
    int MicroBatches,
    string Schedule,
    int VirtualStages,
    string Method,
    IReadOnlyList<PlanDocument.StageEntry> StageList,
    double MaxStageTime,
    double Makespan,
    double BubbleFraction)
{
    public sealed record UnitEntry(string Name, string Kind, double Forward, double InputGradient, double WeightGradient, long Parameters, long ActivationBytes);
    public sealed record StageEntry(int FirstUnit, int LastUnit, double Time);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static PlanDocument From(PlanReport r) => new(
        1,
        r.Plan.Units.Select(u => new UnitEntry(u.Name, u.Kind.ToString(), u.Forward, u.InputGradient, u.WeightGradient, u.Parameters, u.ActivationBytes)).ToArray(),
        r.Request.Stages,
        r.Request.MicroBatches,
        ScheduleNames.Name(r.Request.Schedule),
        r.Request.VirtualStages,
        r.Plan.Method,
        r.Plan.Stages.Select(s => new StageEntry(s.FirstUnit, s.LastUnit, s.Time)).ToArray(),
        r.Plan.MaxStageTime,
        r.Simulation.Makespan,
        r.Simulation.BubbleFraction);

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads a plan file back into a request with manual boundaries; errors name what is wrong.</summary>
    public static PlanRequest Load(string json)
    {
        PlanDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<PlanDocument>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"The plan file is not valid: {e.Message.Split(" Path:")[0]}");
        }
        if (doc is null || doc.Units is null || doc.StageList is null)
            throw new ArgumentException("The plan file needs units and stageList.");
        if (doc.Version != 1)
            throw new ArgumentException($"Plan file version {doc.Version} is not supported; this Explorer reads version 1.");
        var units = doc.Units.Select((u, i) => new PipelineUnit(u.Name, Enum.TryParse<UnitKind>(u.Kind, out var kind) ? kind
            : throw new ArgumentException($"Unit {i} has kind '{u.Kind}'; use Embedding, Layer, Head or Loss."),
            u.Forward, u.InputGradient, u.WeightGradient, u.Parameters, u.ActivationBytes)).ToArray();
        var firsts = doc.StageList.Select(s => s.FirstUnit).ToArray();
        StagePlan.Validate(units.Length, firsts);
        return new PlanRequest
        {
            Units = units,
            Stages = doc.Stages,
            MicroBatches = doc.MicroBatches,
            Schedule = ScheduleNames.Parse(doc.Schedule),
            VirtualStages = doc.VirtualStages,
            Method = PartitionMethod.Manual,
            Boundaries = firsts.Skip(1).ToArray(),
        };
    }
}
