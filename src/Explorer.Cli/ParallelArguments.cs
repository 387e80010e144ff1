using System.CommandLine;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Cli;

/// <summary>
/// The model, cluster and parallel configuration flags shared by <c>explorer parallel</c> and <c>explorer export</c>:
/// a preset, a config.json, or a GPT-style shape; a GPU preset and the node; t, p, d and the rest.
/// </summary>
public sealed class ParallelArguments
{
    private readonly Option<string> _model = new("--model", "-m")
    {
        Description = "A preset (deepseek-llm-7b, deepseek-llm-67b, llama-2-7b, llama-2-70b, or a mini).",
    };
    private readonly Option<FileInfo> _config = new("--config") { Description = "A Hugging Face config.json." };
    private readonly Option<int?> _layers = new("--layers") { Description = "GPT-style shape: layers." };
    private readonly Option<int?> _hidden = new("--hidden") { Description = "GPT-style shape: hidden size." };
    private readonly Option<int?> _heads = new("--heads") { Description = "GPT-style shape: attention heads." };
    private readonly Option<int?> _kvHeads = new("--kv-heads")
    {
        Description = "GPT-style shape: key/value heads (default: --heads).",
    };
    private readonly Option<int?> _ffn = new("--ffn")
    {
        Description = "GPT-style shape: MLP width (default 4·hidden).",
    };
    private readonly Option<int?> _vocab = new("--vocab") { Description = "GPT-style shape: vocabulary." };
    private readonly Option<string> _mlp = new("--mlp")
    {
        Description = "GPT-style shape: swiglu or gelu.",
        DefaultValueFactory = _ => "gelu",
    };
    private readonly Option<int> _gpus = new("--gpus") { Description = "GPUs in all.", Required = true };
    private readonly Option<string> _gpu = new("--gpu")
    {
        Description = $"GPU: {string.Join(", ", Gpu.Keys)}.",
        DefaultValueFactory = _ => "h100-80gb",
    };
    private readonly Option<int> _perNode = new("--gpus-per-node")
    {
        Description = "GPUs per node (NVLink domain).",
        DefaultValueFactory = _ => 8,
    };
    private readonly Option<int> _globalBatch = new("--global-batch")
    {
        Description = "Sequences per optimizer step.",
        Required = true,
    };
    private readonly Option<int> _seq = new("--seq")
    {
        Description = "Sequence length.",
        DefaultValueFactory = _ => 4096,
    };
    private readonly Option<int?> _tp = new("--tp")
    {
        Description = "Tensor parallel t (with --pp and --dp: one configuration instead of a search).",
    };
    private readonly Option<int?> _pp = new("--pp") { Description = "Pipeline parallel p." };
    private readonly Option<int?> _dp = new("--dp") { Description = "Data parallel d (default: gpus / (t·c·p))." };
    private readonly Option<int?> _cp = new("--cp")
    {
        Description =
            "Context parallel c: each sequence split over c GPUs (Megatron-LM's --context-parallel-size). [default: 1]",
    };
    private readonly Option<int> _vpp = new("--vpp")
    {
        Description = "Model chunks per pipeline device (interleaved; the V schedules place 2).",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<int> _mbs = new("--mbs")
    {
        Description = "Micro-batch size (sequences).",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<string> _recompute = new("--recompute")
    {
        Description = "none, selective or full.",
        DefaultValueFactory = _ => "selective",
    };
    private readonly Option<bool> _sp = new("--sequence-parallel")
    {
        Description = "Sequence parallelism (needs t > 1).",
    };
    private readonly Option<int> _zero = new("--zero")
    {
        Description = "ZeRO stage 0-3 (1 = Megatron's distributed optimizer).",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<bool> _overlapGrad = new("--overlap-grad-reduce")
    {
        Description = "Reduce gradients behind the backward (Megatron-LM's flag of that name).",
    };
    private readonly Option<bool> _overlapParam = new("--overlap-param-gather")
    {
        Description = "Gather the updated weights behind the next forward (needs --overlap-grad-reduce and ZeRO-1).",
    };
    private readonly Option<bool> _overlapTp = new("--tp-comm-overlap")
    {
        Description = "Pipeline the tensor-parallel collectives with their GEMMs (needs --sequence-parallel).",
    };
    private readonly Option<string> _attention = new("--attention-backend")
    {
        Description =
            "flash: a fused causal kernel, as Megatron-Core and torchtitan run attention; unfused: s × s matmuls "
            + "with the scores kept, as 2021-22 Megatron-LM did (Megatron-LM's flag of that name).",
        DefaultValueFactory = _ => "flash",
    };
    private readonly Option<string> _schedule = new("--schedule")
    {
        Description =
            "gpipe, 1f1b, interleaved, zb-h1, interleaved-zb, zbv, dualpipev or dualpipe (default: "
            + "interleaved when --vpp > 1).",
    };

    public void AddTo(Command command)
    {
        foreach (
            var option in new Option[]
            {
                _model,
                _config,
                _layers,
                _hidden,
                _heads,
                _kvHeads,
                _ffn,
                _vocab,
                _mlp,
                _gpus,
                _gpu,
                _perNode,
                _globalBatch,
                _seq,
                _tp,
                _pp,
                _dp,
                _cp,
                _vpp,
                _mbs,
                _recompute,
                _sp,
                _zero,
                _schedule,
                _overlapGrad,
                _overlapParam,
                _overlapTp,
                _attention,
            }
        )
            command.Options.Add(option);
    }

    public int Gpus(ParseResult r) => r.GetValue(_gpus);

    public CommOverlap Overlap(ParseResult r) =>
        new(r.GetValue(_overlapGrad), r.GetValue(_overlapParam), r.GetValue(_overlapTp));

    public bool FlashAttention(ParseResult r) => ParallelConfig.ParseAttentionBackend(r.GetValue(_attention)!);

    public int GlobalBatch(ParseResult r) => r.GetValue(_globalBatch);

    public int Sequence(ParseResult r) => r.GetValue(_seq);

    /// <summary>Checks the flags a search does not use, so that a typo is not silently ignored.</summary>
    public void CheckSearchFlags(ParseResult r)
    {
        ParallelConfig.ParseRecompute(r.GetValue(_recompute)!);
        FlashAttention(r);
        if (r.GetValue(_schedule) is { } name)
            ScheduleNames.Parse(name);
    }

    /// <summary>True when t and p are given: one configuration rather than a search.</summary>
    public bool IsSingle(ParseResult r) =>
        r.GetValue(_tp) is not null
        || r.GetValue(_pp) is not null
        || r.GetValue(_dp) is not null
        || r.GetValue(_cp) is not null;

    public Cluster Cluster(ParseResult r) =>
        Explorer.Core.Parallel.Cluster.Node8(Gpu.Get(r.GetValue(_gpu)!)) with
        {
            GpusPerNode = r.GetValue(_perNode),
        };

    public ModelSpec Spec(ParseResult r)
    {
        var model = r.GetValue(_model);
        var config = r.GetValue(_config);
        var shaped =
            r.GetValue(_layers) is not null || r.GetValue(_hidden) is not null || r.GetValue(_heads) is not null;
        if ((model is not null ? 1 : 0) + (config is not null ? 1 : 0) + (shaped ? 1 : 0) != 1)
            throw new ArgumentException(
                "Give exactly one of --model NAME, --config FILE, or a shape (--layers --hidden --heads --vocab)."
            );
        if (model is not null)
            return PlanArguments.Preset(model);
        if (config is not null)
        {
            var read = HfConfigReader.ReadFile(config.FullName);
            return read.Succeeded
                ? read.Spec!
                : throw new ArgumentException($"{config.FullName}: {string.Join("; ", read.Errors)}");
        }
        int Need(Option<int?> o) => r.GetValue(o) ?? throw new ArgumentException($"A shape needs {o.Name}.");
        var hidden = Need(_hidden);
        var heads = Need(_heads);
        var kind = r.GetValue(_mlp)!.Trim().ToLowerInvariant() switch
        {
            "gelu" => FfnKind.Gelu,
            "swiglu" => FfnKind.SwiGlu,
            var other => throw new ArgumentException($"--mlp '{other}': use swiglu or gelu."),
        };
        var spec = new ModelSpec(
            "custom",
            Need(_layers),
            hidden,
            r.GetValue(_ffn) ?? 4 * hidden,
            heads,
            r.GetValue(_kvHeads) ?? heads,
            Need(_vocab),
            Math.Max(r.GetValue(_seq), 1),
            FfnKind: kind
        );
        var errors = SpecValidator.Validate(spec);
        return errors.Count == 0 ? spec : throw new ArgumentException(string.Join("; ", errors));
    }

    public ParallelConfig Config(ParseResult r)
    {
        int t = r.GetValue(_tp) ?? 1,
            c = r.GetValue(_cp) ?? 1,
            p = r.GetValue(_pp) ?? 1,
            gpus = r.GetValue(_gpus);
        if (c < 1)
            throw new ArgumentException($"--cp {c}: context parallel c must be at least 1.");
        var d = r.GetValue(_dp) ?? (t > 0 && p > 0 && gpus % ((long)t * c * p) == 0 ? gpus / (t * c * p) : 0);
        if (d < 1)
            throw new ArgumentException(
                $"--gpus {gpus} is not a multiple of t·c·p = {(long)t * c * p}; give --dp or change --tp/--cp/--pp."
            );
        if ((long)t * c * p * d != gpus)
            throw new ArgumentException($"t·c·p·d = {t}·{c}·{p}·{d} = {(long)t * c * p * d} but --gpus is {gpus}.");
        var v = r.GetValue(_vpp);
        var schedule =
            r.GetValue(_schedule) is { } name ? ScheduleNames.Parse(name)
            : v > 1 ? ScheduleKind.Interleaved1F1B
            : ScheduleKind.OneFOneB;
        if (SchedulePlacement.IsV(schedule) && r.GetResult(_vpp) is not { Implicit: false })
            v = 2; // the V's two chunks per device, unless --vpp says otherwise (and the rules then say why not)
        return new ParallelConfig
        {
            Tensor = t,
            Context = c,
            Pipeline = p,
            Data = d,
            VirtualStages = v,
            MicroBatch = r.GetValue(_mbs),
            GlobalBatch = r.GetValue(_globalBatch),
            SequenceParallel = r.GetValue(_sp),
            Recompute = ParallelConfig.ParseRecompute(r.GetValue(_recompute)!),
            Zero = r.GetValue(_zero),
            Schedule = schedule,
            Overlap = Overlap(r),
            FlashAttention = FlashAttention(r),
        };
    }
}
