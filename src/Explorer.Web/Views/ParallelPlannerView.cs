using Explorer.Core.Parallel;
using Explorer.Core.Specs;

namespace Explorer.Web.Views;

/// <summary>A chosen parallel configuration and the cluster it was costed on.</summary>
public sealed record ParallelChoice(Cluster Cluster, ParallelEstimate Estimate)
{
    public ParallelConfig Config => Estimate.Config;
}

/// <summary>
/// The Pipeline page's cluster panel: a GPU preset (every figure editable), the node and the batch; the ranked
/// configurations that fit; the chosen one, whose pipeline dimension the rest of the page then plans.
/// </summary>
public sealed class ParallelPlannerView
{
    /// <summary>Rows the table shows.</summary>
    public const int Rows = 10;

    public string GpuKey { get; private set; } = Gpu.H200.Key;
    public double PeakTflops { get; set; }
    public double MemoryGB { get; set; }
    public double IntraNodeGBps { get; set; }
    public double InterNodeGBps { get; set; }
    public int GpusPerNode { get; set; } = 8;
    public int Gpus { get; set; } = 64;

    /// <summary>Sequences per step (DeepSeek LLM trained the 67B on 4,608 of 4,096 tokens; a smaller default keeps the
    /// page's timeline readable).</summary>
    public int GlobalBatch { get; set; } = 256;

    /// <summary>
    /// The engine whose schedules the search keeps ("megatron", "torchtitan", "deepspeed"), or null for every
    /// schedule the simulator runs. Megatron-LM by default, where the page's export goes first.
    /// </summary>
    public string? Engine { get; set; } = "megatron";

    /// <summary>The communication overlap the run uses (Megatron-Core's flags); each configuration takes what it
    /// allows.</summary>
    public CommOverlap Overlap { get; set; } = CommOverlap.None;

    /// <summary>Whether the run's attention is a fused causal kernel (<see
    /// cref="ParallelConfig.FlashAttention"/>).</summary>
    public bool FlashAttention { get; set; } = true;

    public SearchResult? Result { get; private set; }
    private IReadOnlyList<ParallelEstimate> _fitting = [];

    /// <summary>The fastest fitting configurations, best first (after the schedule filter).</summary>
    public IReadOnlyList<ParallelEstimate> Top => _fitting.Take(Rows).ToArray();
    public ParallelChoice? Chosen { get; private set; }
    public string? Problem { get; private set; }

    /// <summary>How many of the fastest are within the estimator's error of the fastest (<see cref="Tradeoffs"/>): a
    /// tie.</summary>
    public int Tied { get; private set; }

    /// <summary>Most configurations the trade-off chart draws (the fastest; the Pareto front is always
    /// drawn).</summary>
    public const int MaxPoints = 3_000;

    /// <summary>
    /// Step time against memory per GPU: every fitting configuration as a point (the fastest <see cref="MaxPoints"/>)
    /// and the Pareto front as a line, from the least memory up.
    /// </summary>
    public IReadOnlyList<LineSeries> TradeoffLines { get; private set; } = [];

    /// <summary>The configurations on the Pareto front, least memory first.</summary>
    public IReadOnlyList<ParallelEstimate> Front { get; private set; } = [];

    public ParallelPlannerView() => SelectGpu(GpuKey);

    /// <summary>Fills the figures from a preset; they stay editable.</summary>
    public void SelectGpu(string key)
    {
        var node = Cluster.Node8(Gpu.Get(key));
        GpuKey = node.Gpu.Key;
        PeakTflops = node.Gpu.PeakBf16Flops / 1e12;
        MemoryGB = node.Gpu.MemoryBytes / 1e9;
        IntraNodeGBps = node.IntraNodeBytesPerSecond / 1e9;
        InterNodeGBps = node.InterNodeBytesPerSecond / 1e9;
        GpusPerNode = node.GpusPerNode;
    }

    public Cluster Cluster
    {
        get
        {
            var preset = Cluster.Node8(Gpu.Get(GpuKey));
            var gpu = preset.Gpu with
            {
                PeakBf16Flops = PeakTflops * 1e12,
                MemoryBytes = (long)Math.Clamp(MemoryGB * 1e9, -1, long.MaxValue / 2),
            };
            return preset with
            {
                Gpu = gpu,
                GpusPerNode = GpusPerNode,
                IntraNodeBytesPerSecond = IntraNodeGBps * 1e9,
                InterNodeBytesPerSecond = InterNodeGBps * 1e9,
            };
        }
    }

    /// <summary>Searches every configuration of the model on this cluster; chooses the fastest that fits.</summary>
    public void Search(ModelSpec spec, int sequenceLength)
    {
        Result = ParallelSearch.Search(
            spec,
            sequenceLength,
            Cluster,
            Gpus,
            GlobalBatch,
            overlap: Overlap,
            flashAttention: FlashAttention
        );
        _fitting = Result
            .Fitting.Where(e => Explorer.Core.Pipeline.ExportTargets.Runs(Engine, e.Config.Schedule))
            .ToArray();
        Problem =
            Result.Problems.Count > 0 ? string.Join(" ", Result.Problems)
            : _fitting.Count == 0
                ? $"No configuration of {spec.Name} fits {Gpus} × {MemoryGB:0} GB at a global batch of "
                    + $"{GlobalBatch}: add GPUs, use larger ones, or lower the batch."
            : null;
        Chosen = _fitting.Count > 0 ? new ParallelChoice(Cluster, _fitting[0]) : null;
        Tied = Tradeoffs.TiedWithFastest(_fitting.Select(e => e.StepSeconds).ToArray(), Tradeoffs.EstimatorError);
        var points = _fitting.Select(e => (e.StepSeconds, (double)e.Memory!.Total)).ToArray();
        Front = Tradeoffs
            .ParetoFront(points)
            .Select(i => _fitting[i])
            .OrderBy(e => e.Memory!.Total)
            .ThenBy(e => e.StepSeconds)
            .ToArray();
        var shown = _fitting.Take(MaxPoints).ToArray();
        TradeoffLines =
            _fitting.Count == 0
                ? []
                :
                [
                    new LineSeries(
                        shown.Length == _fitting.Count
                            ? $"fits ({shown.Length:N0})"
                            : $"fits (the {shown.Length:N0} fastest of {_fitting.Count:N0})",
                        shown.Select(e => Gib(e.Memory!.Total)).ToArray(),
                        shown.Select(e => e.StepSeconds).ToArray(),
                        "#9aa5b1",
                        PointsOnly: true
                    ),
                    new LineSeries(
                        "Pareto front",
                        Front.Select(e => Gib(e.Memory!.Total)).ToArray(),
                        Front.Select(e => e.StepSeconds).ToArray(),
                        "#c2410c"
                    ),
                ];
    }

    /// <summary>Bytes in GiB, as the table's memory column reads them.</summary>
    private static double Gib(long bytes) => bytes / (double)(1L << 30);

    /// <summary>The sentence under the table: how many rows the estimate cannot tell apart, and the front's
    /// ends.</summary>
    public string TieSentence() =>
        _fitting.Count == 0
            ? ""
            : (
                Tied > 1
                    ? $"The {Tied:N0} fastest are within the estimator's error "
                        + $"({Tradeoffs.EstimatorError:P1} on published runs it was not fitted on) of the "
                        + "fastest: a tie, not a ranking. "
                    : "The fastest is ahead of the next by more than the estimator's error "
                        + $"({Tradeoffs.EstimatorError:P1}). "
            )
                + $"{Front.Count:N0} configurations trade step time for memory (the Pareto front, in the chart): from "
                + $"{Explorer.Core.Formatting.Units.Bytes(Front[0].Memory!.Total)} per GPU at "
                + $"{Front[0].StepSeconds:0.00} s to "
                + $"{Explorer.Core.Formatting.Units.Bytes(Front[^1].Memory!.Total)} at {Front[^1].StepSeconds:0.00} s.";

    /// <summary>Chooses row <paramref name="index"/> of <see cref="Top"/>.</summary>
    public void Choose(int index)
    {
        if (index >= 0 && index < Math.Min(Rows, _fitting.Count))
            Chosen = new ParallelChoice(Cluster, _fitting[index]);
    }

    /// <summary>Forgets the choice (the page is back to planning a pipeline alone).</summary>
    public void Clear() => Chosen = null;
}
