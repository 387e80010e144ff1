using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Explorer.Core.Accounting;
using Explorer.Core.Parallel;

namespace Explorer.Core.Pipeline;

/// <summary>An export: the text a tool accepts, or the rule the plan breaks for that tool.</summary>
public sealed record ExportResult(string Format, string? Text, string? Refusal)
{
    public bool Succeeded => Text is not null;

    public static ExportResult Ok(string format, string text) => new(format, text, null);

    public static ExportResult Refuse(string format, string why) => new(format, null, why);
}

/// <summary>
/// The versions the exports are written for: each export names its target in its first line, and the tests check
/// every flag, key and field against a fixture extracted from those commits' own sources
/// (research/export-fixtures/extract.py).
/// </summary>
public static class ExportTargets
{
    /// <summary>
    /// Whether an engine runs a schedule: Megatron-LM 1F1B and interleaved 1F1B; DeepSpeed's pipeline engine its own
    /// 1F1B; torch.distributed.pipelining (torchtitan) GPipe, 1F1B, interleaved 1F1B, interleaved zero bubble, ZBV and
    /// DualPipeV; null (any engine) every schedule the simulator runs.
    /// </summary>
    public static bool Runs(string? engine, ScheduleKind schedule) =>
        engine switch
        {
            "megatron" => schedule is ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B,
            "deepspeed" => schedule is ScheduleKind.OneFOneB,
            "torchtitan" => schedule
                is ScheduleKind.GPipe
                    or ScheduleKind.OneFOneB
                    or ScheduleKind.Interleaved1F1B
                    or ScheduleKind.InterleavedZeroBubble
                    or ScheduleKind.ZeroBubbleV
                    or ScheduleKind.DualPipeV,
            _ => true,
        };

    public const string MegatronCommit = "d98e8a64ddf34856e74b24714e3bedb2f5a39553";
    public const string MegatronDate = "2026-08-22";
    public const string TorchtitanCommit = "b5bcd76c66d0acb1a08b176d9639425bc55e0b2a";
    public const string TorchtitanDate = "2026-08-21";
    public const string DeepSpeedCommit = "edaa7221267243c7be7fb49c5d5f5c4fb97b4641";
    public const string DeepSpeedDate = "2026-08-22";

    public static string Megatron => $"Megatron-LM main @ {MegatronCommit[..10]} ({MegatronDate})";
    public static string Torchtitan => $"torchtitan main @ {TorchtitanCommit[..10]} ({TorchtitanDate})";
    public static string DeepSpeed => $"DeepSpeed master @ {DeepSpeedCommit[..10]} ({DeepSpeedDate})";
}

/// <summary>
/// Writes a plan for the engines people train with: Megatron-LM, DeepSpeed, torchtitan, or Explorer's own JSON. With
/// a <see cref="ParallelConfig"/> the export carries the tensor and data dimensions, batch, sequence parallelism,
/// recomputation and ZeRO stage; without one, the plan's pipeline alone (t = d = 1, one sequence per micro-batch).
/// </summary>
public static class PlanExports
{
    public static IReadOnlyList<string> Formats { get; } = ["megatron", "deepspeed", "torchtitan", "json"];

    public static ExportResult Export(PlanReport report, string format, ParallelConfig? parallel = null) =>
        format.Trim().ToLowerInvariant() switch
        {
            "megatron" => Megatron(report, parallel),
            "deepspeed" => DeepSpeed(report, parallel),
            "torchtitan" => Torchtitan(report, parallel),
            "json" => ExportResult.Ok("json", PlanDocument.From(report).ToJson()),
            _ => throw new ArgumentException(
                $"Unknown export format '{format}'. Use one of: {string.Join(", ", Formats)}."
            ),
        };

    /// <summary>The configuration an export describes: the one given, or the plan's pipeline alone.</summary>
    public static ParallelConfig ConfigOf(PlanReport report, ParallelConfig? parallel) =>
        parallel
        ?? new ParallelConfig
        {
            Pipeline = report.Request.Stages,
            VirtualStages = ParallelChunks(report.Request.Schedule, report.Request.VirtualStages),
            Schedule = report.Request.Schedule,
            GlobalBatch = report.Request.MicroBatches,
            Zero = 0,
        };

    /// <summary>A parallel configuration's v for a plan's schedule: the interleaved v, 2 for a V, else 1.</summary>
    public static int ParallelChunks(ScheduleKind schedule, int virtualStages) =>
        SchedulePlacement.UsesVirtualStages(schedule) ? virtualStages
        : SchedulePlacement.IsV(schedule) ? 2
        : 1;

    private static string? Mismatch(PlanReport report, ParallelConfig c)
    {
        var r = report.Request;
        if (c.Pipeline != r.Stages)
            return $"The configuration has p = {c.Pipeline} but the plan has {r.Stages} stages.";
        if (c.Schedule != r.Schedule)
            return $"The configuration's schedule is {ScheduleNames.Name(c.Schedule)} but the plan's is "
                + $"{ScheduleNames.Name(r.Schedule)}.";
        if (c.MicroBatches != r.MicroBatches)
            return $"The configuration has m = B/(d·b) = {c.GlobalBatch}/({c.Data}·{c.MicroBatch}) = "
                + $"{c.MicroBatches} micro-batches but the plan has {r.MicroBatches}.";
        if (SchedulePlacement.UsesVirtualStages(c.Schedule) && c.VirtualStages != r.VirtualStages)
            return $"The configuration has v = {c.VirtualStages} but the plan has {r.VirtualStages} chunks per device.";
        return null;
    }

    /// <summary>
    /// Megatron-LM arguments (pretrain_gpt.py). Micro-batches follow from --global-batch-size, --micro-batch-size and
    /// the data-parallel size (world size / (t·p)). A uniform plan uses the uniform flags (and, interleaved,
    /// --num-virtual-stages-per-pipeline-rank); any other plan is spelled out with --pipeline-model-parallel-layout
    /// (E the embedding, t a decoder layer, L the output layer with the loss; v·p stages when interleaved).
    /// </summary>
    public static ExportResult Megatron(PlanReport report, ParallelConfig? parallel = null)
    {
        var r = report.Request;
        var plan = report.Plan;
        var c = ConfigOf(report, parallel);
        if (Mismatch(report, c) is { } mismatch)
            return ExportResult.Refuse("megatron", mismatch);
        var layers = plan.Units.Count(u => u.Kind == UnitKind.Layer);
        if (r.Schedule is not (ScheduleKind.GPipe or ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B))
            return ExportResult.Refuse(
                "megatron",
                "Megatron-LM's pipeline schedules are 1F1B and interleaved 1F1B; it has no "
                    + $"{ScheduleNames.Title(r.Schedule)} (choose 1f1b or "
                    + $"interleaved{(r.Schedule == ScheduleKind.ZeroBubbleH1 ? "" : ", or export to torchtitan")})."
            );
        if (r.Schedule == ScheduleKind.GPipe)
            return ExportResult.Refuse(
                "megatron",
                "Megatron-LM does not run GPipe; its schedules are 1F1B and interleaved 1F1B."
            );
        if (c.Zero >= 2)
            return ExportResult.Refuse(
                "megatron",
                "Megatron-LM's distributed optimizer shards the optimizer state (ZeRO-1); "
                    + $"ZeRO-{c.Zero} has no flag in its argument parser. Choose ZeRO 0 or 1."
            );
        var args = new StringBuilder();
        args.Append(
            $"--tensor-model-parallel-size {c.Tensor} --pipeline-model-parallel-size {c.Pipeline} --num-layers {layers}"
        );
        if (c.Context > 1)
            args.Append($" --context-parallel-size {c.Context}");
        args.Append($" --micro-batch-size {c.MicroBatch} --global-batch-size {c.GlobalBatch}");
        if (c.SequenceParallel)
            args.Append(" --sequence-parallel");
        args.Append(
            c.Recompute switch
            {
                Recomputation.Selective => " --recompute-granularity selective",
                Recomputation.Full =>
                    " --recompute-granularity full --recompute-method uniform --recompute-num-layers 1",
                _ => "",
            }
        );
        if (c.Zero == 1)
            args.Append(" --use-distributed-optimizer");
        if (c.Overlap.GradReduce)
            args.Append(" --overlap-grad-reduce");
        if (c.Overlap.ParamGather)
            args.Append(" --overlap-param-gather");
        if (c.Overlap.TensorParallel)
            args.Append(" --tp-comm-overlap");
        // A fused causal kernel is Megatron-Core's default (its auto backend); the unfused path must be asked for.
        if (!c.FlashAttention)
            args.Append(" --attention-backend unfused");
        var header =
            (
                c.Context > 1
                    ? $"# {ExportTargets.Megatron}: world size t·c·p·d = "
                        + $"{c.Tensor}·{c.Context}·{c.Pipeline}·{c.Data} = {c.Gpus} GPUs"
                    : $"# {ExportTargets.Megatron}: world size t·p·d = {c.Tensor}·{c.Pipeline}·{c.Data} = {c.Gpus} GPUs"
            ) + $", {c.MicroBatches} micro-batches per step\n";
        var uniformChunks =
            r.Schedule == ScheduleKind.Interleaved1F1B
            && plan.Method == "uniform"
            && !r.Uniform.AccountForEmbedding
            && !r.Uniform.AccountForLoss
            && r.Uniform.FirstStageLayers is null
            && r.Uniform.LastStageLayers is null
            && layers % (r.Stages * r.VirtualStages) == 0;
        if (plan.Method == "uniform" && r.Schedule == ScheduleKind.OneFOneB)
        {
            var u = r.Uniform;
            if (u.AccountForEmbedding)
                args.Append(" --account-for-embedding-in-pipeline-split");
            if (u.AccountForLoss)
                args.Append(" --account-for-loss-in-pipeline-split");
            if (u.FirstStageLayers is { } first)
                args.Append($" --decoder-first-pipeline-num-layers {first}");
            if (u.LastStageLayers is { } last)
                args.Append($" --decoder-last-pipeline-num-layers {last}");
            return ExportResult.Ok("megatron", header + args);
        }
        if (uniformChunks)
            return ExportResult.Ok(
                "megatron",
                header + args + $" --num-virtual-stages-per-pipeline-rank {r.VirtualStages}"
            );
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
                            return ExportResult.Refuse(
                                "megatron",
                                "Megatron-LM places the embedding (E) on the first stage; this plan does not."
                            );
                        text.Append('E');
                        break;
                    case UnitKind.Layer:
                        text.Append('t');
                        break;
                    case UnitKind.Head:
                        var lossHere = i + 1 <= stage.LastUnit && plan.Units[i + 1].Kind == UnitKind.Loss;
                        var lossExists = plan.Units.Any(x => x.Kind == UnitKind.Loss);
                        if (lossExists && !lossHere)
                            return ExportResult.Refuse(
                                "megatron",
                                "Megatron-LM computes the output layer and the loss together (L): keep "
                                    + "norm+lm_head and the loss in one stage."
                            );
                        text.Append('L');
                        break;
                    case UnitKind.Loss:
                        if (i == stage.FirstUnit)
                            return ExportResult.Refuse(
                                "megatron",
                                "Megatron-LM computes the output layer and the loss together (L): keep "
                                    + "norm+lm_head and the loss in one stage."
                            );
                        break;
                }
            }
            stages.Add(text.ToString());
        }
        if (!stages[^1].EndsWith('L') && plan.Units.Any(u => u.Kind == UnitKind.Head))
            return ExportResult.Refuse(
                "megatron",
                "Megatron-LM places the output layer and loss (L) on the last stage; this plan does not."
            );
        // The layout alone sets the virtual stages (v·p entries): Megatron-LM accepts at most one of it,
        // --num-layers-per-virtual-pipeline-stage and --num-virtual-stages-per-pipeline-rank.
        args.Append($" --pipeline-model-parallel-layout \"{string.Join('|', stages)}\"");
        return ExportResult.Ok("megatron", header + args);
    }

    /// <summary>
    /// DeepSpeed: the <c>PipelineModule</c> call and the config JSON (batch, bf16, ZeRO). DeepSpeed partitions by
    /// 'uniform', 'parameters' or 'type:REGEX' only, so a plan exports when it is what one of those produces;
    /// otherwise the refusal says so. Tensor parallelism comes from the model code (e.g. Megatron-DeepSpeed).
    /// </summary>
    public static ExportResult DeepSpeed(PlanReport report, ParallelConfig? parallel = null)
    {
        var r = report.Request;
        var plan = report.Plan;
        var c = ConfigOf(report, parallel);
        if (Mismatch(report, c) is { } mismatch)
            return ExportResult.Refuse("deepspeed", mismatch);
        if (r.Schedule != ScheduleKind.OneFOneB)
            return ExportResult.Refuse(
                "deepspeed",
                "DeepSpeed's pipeline engine runs its own 1F1B schedule (TrainSchedule); "
                    + $"{ScheduleNames.Name(r.Schedule)} cannot be exported to it."
            );
        if (c.Context > 1)
            return ExportResult.Refuse(
                "deepspeed",
                "DeepSpeed's pipeline engine has no context parallelism (its Ulysses sequence "
                    + $"parallelism splits heads, not a ring over the sequence); c = {c.Context} cannot be "
                    + "exported to it. Export to Megatron-LM or torchtitan, or choose c = 1."
            );
        if (c.Zero >= 2 && c.Pipeline > 1)
            return ExportResult.Refuse(
                "deepspeed",
                $"DeepSpeed's pipeline engine supports ZeRO stage 0 or 1 only; ZeRO-{c.Zero} needs p = 1."
            );
        // DeepSpeed's layer list: every unit but the loss, which is PipelineModule's loss_fn on the last stage.
        var layers = plan.Units.Where(u => u.Kind != UnitKind.Loss).ToArray();
        if (plan.Units.Count > 0 && plan.Units[^1].Kind == UnitKind.Loss && plan.Stages[^1].UnitCount == 1)
            return ExportResult.Refuse(
                "deepspeed",
                "DeepSpeed runs the loss on the last stage with its last layers; a stage holding only "
                    + "the loss cannot be expressed."
            );
        var parts = plan.Stages.Select(s => Math.Min(s.FirstUnit, layers.Length)).Append(layers.Length).ToArray();
        string method;
        if (parts.SequenceEqual(DeepSpeedUniformParts(layers.Length, r.Stages)))
            method = "uniform";
        else if (
            BalancedPartitioner.Parameters().Partition(layers, r.Stages).Plan is { } balanced
            && balanced.Stages.Select(s => s.FirstUnit).Append(layers.Length).SequenceEqual(parts)
        )
            method = "parameters";
        else
            return ExportResult.Refuse(
                "deepspeed",
                "DeepSpeed PipelineModule partitions only by 'uniform', 'parameters' or 'type:REGEX', "
                    + $"and this plan (parts [{string.Join(", ", parts)}]) is none of them. Use the parameters "
                    + "or uniform method, or set PipelineModule.parts yourself."
            );
        var text = new StringBuilder();
        text.AppendLine(
            $"# {ExportTargets.DeepSpeed}: {c.Gpus} GPUs = t·p·d = {c.Tensor}·{c.Pipeline}·{c.Data}"
                + (
                    c.Tensor > 1
                        ? $"; tensor parallel t = {c.Tensor} is the model code's (Megatron-DeepSpeed: "
                            + $"--tensor-model-parallel-size {c.Tensor})"
                        : ""
                )
        );
        text.AppendLine(
            $"PipelineModule(layers=layers, num_stages={r.Stages}, partition_method='{method}', loss_fn=loss_fn"
                + (c.Recompute == Recomputation.Full ? ", activation_checkpoint_interval=1" : "")
                + $")  # parts = [{string.Join(", ", parts)}]"
        );
        text.AppendLine("# ds_config.json");
        var config = new Dictionary<string, object>
        {
            ["train_batch_size"] = c.GlobalBatch,
            ["train_micro_batch_size_per_gpu"] = c.MicroBatch,
            ["gradient_accumulation_steps"] = c.MicroBatches,
            ["bf16"] = new Dictionary<string, object> { ["enabled"] = true },
            ["zero_optimization"] = c.Overlap.GradReduce
                // gradient reduction behind the backward
                ? new Dictionary<string, object> { ["stage"] = c.Zero, ["overlap_comm"] = true }
                : new Dictionary<string, object> { ["stage"] = c.Zero },
        };
        text.Append(JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
        return ExportResult.Ok("deepspeed", text.ToString());
    }

    /// <summary>DeepSpeed's ds_utils.partition_uniform: equal counts, the first (n mod p) parts one larger.</summary>
    public static int[] DeepSpeedUniformParts(int items, int parts)
    {
        var result = new int[parts + 1];
        if (items <= parts)
        {
            for (var p = 0; p <= parts; p++)
                result[p] = Math.Min(p, items);
            return result;
        }
        var chunk = items / parts;
        var residual = items - chunk * parts;
        for (var p = 1; p <= parts; p++)
            result[p] = result[p - 1] + chunk + (p <= residual ? 1 : 0);
        return result;
    }

    /// <summary>
    /// torchtitan: the arguments of <c>Trainer.Config</c> in a config_registry function (training tokens, the
    /// ParallelismConfig with <c>module_fqns_per_model_part</c>, one list of module names per model chunk, and the
    /// activation checkpointing policy).
    /// </summary>
    public static ExportResult Torchtitan(PlanReport report, ParallelConfig? parallel = null)
    {
        var r = report.Request;
        var plan = report.Plan;
        var c = ConfigOf(report, parallel);
        if (Mismatch(report, c) is { } mismatch)
            return ExportResult.Refuse("torchtitan", mismatch);
        if (!c.FlashAttention)
            return ExportResult.Refuse(
                "torchtitan",
                "torchtitan's models run attention through PyTorch's fused kernels (scaled_dot_product_attention or "
                    + "FlexAttention); it has no setting for the unfused path. Choose --attention-backend flash."
            );
        var schedule = r.Schedule switch
        {
            ScheduleKind.GPipe => "GPipe",
            ScheduleKind.OneFOneB => "1F1B",
            ScheduleKind.Interleaved1F1B => "Interleaved1F1B",
            ScheduleKind.InterleavedZeroBubble => "InterleavedZeroBubble",
            ScheduleKind.ZeroBubbleV => "ZBVZeroBubble",
            ScheduleKind.DualPipeV => "DualPipeV",
            _ => null,
        };
        if (schedule is null)
            return ExportResult.Refuse(
                "torchtitan",
                r.Schedule == ScheduleKind.DualPipe
                    ? "torch.distributed.pipelining runs DualPipe in its V form only (ScheduleDualPipeV); "
                        + "the two-direction DualPipe is DeepSeek's own library. Choose dualpipev."
                    : "torch.distributed.pipelining has no ZB-H1 schedule; its zero-bubble schedules are "
                        + "ScheduleInterleavedZeroBubble and ScheduleZBVZeroBubble. Choose interleaved-zb or "
                        + "zbv."
            );
        var parts = new List<string>();
        foreach (var stage in plan.Stages)
        {
            var names = new List<string>();
            for (var i = stage.FirstUnit; i <= stage.LastUnit; i++)
            {
                var unit = plan.Units[i];
                switch (unit.Kind)
                {
                    case UnitKind.Embedding:
                        names.Add("tok_embeddings");
                        break;
                    case UnitKind.Layer:
                        names.Add(unit.ModulePath);
                        break;
                    case UnitKind.Head:
                        names.Add("norm");
                        names.Add("lm_head");
                        break;
                }
            }
            if (names.Count == 0)
                return ExportResult.Refuse(
                    "torchtitan",
                    $"Stage {stage.Index} holds only the loss; torchtitan computes the loss after the "
                        + "last model chunk. Keep the loss with the head."
                );
            parts.Add("[" + string.Join(", ", names.Select(n => $"\"{n}\"")) + "]");
        }
        // The plan was costed at its micro-batch of s·b tokens; a step is m of them on each of d replicas.
        var tokens = r.TokensPerMicroBatch;
        var text = new StringBuilder();
        text.AppendLine(
            $"# {ExportTargets.Torchtitan}: Trainer.Config arguments in a config_registry function; {c.Gpus} GPUs"
        );
        text.AppendLine("training=TrainingConfig(");
        text.AppendLine($"    num_tokens_per_microbatch_per_dp_rank={tokens},");
        text.AppendLine($"    num_tokens_per_train_step={tokens * c.MicroBatches * c.Data},");
        text.AppendLine("),");
        text.AppendLine("parallelism=ParallelismConfig(");
        text.AppendLine($"    tensor_parallel_degree={c.Tensor},");
        text.AppendLine($"    enable_sequence_parallel={(c.SequenceParallel ? "True" : "False")},");
        if (c.Context > 1)
            text.AppendLine($"    context_parallel_degree={c.Context},");
        text.AppendLine($"    pipeline_parallel_degree={c.Pipeline},");
        text.AppendLine($"    pipeline_parallel_schedule=\"{schedule}\",");
        if (SchedulePlacement.IsV(r.Schedule))
            text.AppendLine(
                $"    # V placement (torchtitan's style \"v\"): rank r runs model parts r and {2 * r.Stages - 1} − r"
            );
        text.AppendLine($"    num_pp_microbatches={c.MicroBatches},");
        text.AppendLine($"    module_fqns_per_model_part=[{string.Join(", ", parts)}],");
        // FSDP2 shards weights, gradients and optimizer state together: ZeRO-1/2 map to keeping the weights gathered
        // after the forward ("never" reshard), ZeRO-3 to resharding them; ZeRO-0 is plain replication.
        if (c.Zero == 0)
            text.AppendLine($"    data_parallel_replicate_degree={c.Data},\n    data_parallel_shard_degree=1,");
        else
            text.AppendLine(
                $"    data_parallel_replicate_degree=1,\n    data_parallel_shard_degree={c.Data},\n    "
                    + $"fsdp_reshard_after_forward=\"{(c.Zero == 3 ? "always" : "never")}\","
            );
        text.AppendLine("),");
        // FSDP2 prefetches weight gathers and reduces gradients behind compute on its own; asynchronous tensor
        // parallelism is torch.compile's (CompileConfig requires the model compiled).
        if (c.Overlap.TensorParallel)
            text.AppendLine(
                "compile=CompileConfig(enable=True, components=[\"model\", \"loss\"], "
                    + "enable_async_tensor_parallel=True),"
            );
        text.Append(
            c.Recompute switch
            {
                Recomputation.Full => "activation_checkpoint=FullAC.Config(),",
                Recomputation.Selective => "activation_checkpoint=SelectiveAC.Config(),",
                _ => "activation_checkpoint=None,",
            }
        );
        return ExportResult.Ok("torchtitan", text.ToString());
    }
}

/// <summary>Explorer's own plan file: the units and their costs, the stages, and the schedule. Loads back
/// exactly.</summary>
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
    double BubbleFraction
)
{
    public sealed record UnitEntry(
        string Name,
        string Kind,
        double Forward,
        double InputGradient,
        double WeightGradient,
        long Parameters,
        long ActivationBytes
    );

    public sealed record StageEntry(int FirstUnit, int LastUnit, double Time);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static PlanDocument From(PlanReport r) =>
        new(
            1,
            r.Plan.Units.Select(u => new UnitEntry(
                    u.Name,
                    u.Kind.ToString(),
                    u.Forward,
                    u.InputGradient,
                    u.WeightGradient,
                    u.Parameters,
                    u.ActivationBytes
                ))
                .ToArray(),
            r.Request.Stages,
            r.Request.MicroBatches,
            ScheduleNames.Name(r.Request.Schedule),
            r.Request.VirtualStages,
            r.Plan.Method,
            r.Plan.Stages.Select(s => new StageEntry(s.FirstUnit, s.LastUnit, s.Time)).ToArray(),
            r.Plan.MaxStageTime,
            r.Simulation.Makespan,
            r.Simulation.BubbleFraction
        );

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
            throw new ArgumentException(
                $"Plan file version {doc.Version} is not supported; this Explorer reads version 1."
            );
        var units = doc
            .Units.Select(
                (u, i) =>
                    new PipelineUnit(
                        u.Name,
                        Enum.TryParse<UnitKind>(u.Kind, out var kind)
                            ? kind
                            : throw new ArgumentException(
                                $"Unit {i} has kind '{u.Kind}'; use Embedding, Layer, Head or Loss."
                            ),
                        u.Forward,
                        u.InputGradient,
                        u.WeightGradient,
                        u.Parameters,
                        u.ActivationBytes
                    )
            )
            .ToArray();
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
