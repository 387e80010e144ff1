using Explorer.Core.Accounting;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Xunit.Abstractions;

namespace Explorer.Core.Tests.Parallel;

/// <summary>
/// Validation on runs the estimator was not fitted on: Table 5 of Korthikanti et al., "Reducing Activation
/// Recomputation in Large Transformer Models" (arXiv 2205.05198): end-to-end iteration times of GPT models of 22B to
/// 1T parameters on DGX A100 nodes, with full recomputation, and with sequence parallelism and selective
/// recomputation. The configurations are as Calculon encodes them for its own validation (calculon-ai/calculon @
/// caa4b11f8fe1fee3ba57adaacb7590d7deabd053, validation/seqsel/tab5/*.json and models/*.json): sequence 2,048,
/// vocabulary 51,200, fp16, no optimizer sharding, no overlap, attention unfused (Megatron-LM of 2022).
/// </summary>
public class KorthikantiTable5Tests(ITestOutputHelper output)
{
    public sealed record Row(
        string Model,
        int Layers,
        int Hidden,
        int Heads,
        int Tensor,
        int Pipeline,
        int VirtualStages,
        int Batch,
        int MicroBatch,
        bool SequenceParallelSelective,
        double MeasuredSeconds
    );

    public static readonly Row[] Table5 =
    [
        new("22B", 48, 6144, 64, 8, 1, 1, 4, 4, false, 1.42),
        new("22B", 48, 6144, 64, 8, 1, 1, 4, 4, true, 1.10),
        new("175B", 96, 12288, 96, 8, 8, 3, 64, 1, false, 18.13),
        new("175B", 96, 12288, 96, 8, 8, 3, 64, 1, true, 13.75),
        new("530B", 105, 20480, 128, 8, 35, 3, 280, 1, false, 49.05),
        new("530B", 105, 20480, 128, 8, 35, 3, 280, 1, true, 37.83),
        new("1T", 128, 25600, 160, 8, 64, 1, 512, 1, false, 94.42),
        new("1T", 128, 25600, 160, 8, 64, 1, 512, 1, true, 71.49),
    ];

    public static ParallelEstimate Predict(Row r)
    {
        var spec = new ModelSpec(
            $"gpt-{r.Model}",
            r.Layers,
            r.Hidden,
            4 * r.Hidden,
            r.Heads,
            r.Heads,
            51200,
            2048,
            TiedEmbeddings: true,
            FfnKind: FfnKind.Gelu
        );
        return ParallelEstimator.Estimate(
            spec,
            2048,
            Cluster.Node8(Gpu.A100_80GB),
            new ParallelConfig
            {
                Tensor = r.Tensor,
                Pipeline = r.Pipeline,
                Data = 1,
                VirtualStages = r.VirtualStages,
                MicroBatch = r.MicroBatch,
                GlobalBatch = r.Batch,
                SequenceParallel = r.SequenceParallelSelective,
                Recompute = r.SequenceParallelSelective ? Recomputation.Selective : Recomputation.Full,
                Zero = 0,
                Schedule = r.VirtualStages > 1 ? ScheduleKind.Interleaved1F1B : ScheduleKind.OneFOneB,
                FlashAttention = false,
            }
        );
    }

    /// <summary>
    /// Every row within 10% and the mean within 5%, with the efficiency fitted on SC21 Table 1 alone. The deep
    /// pipelines of the 530B and 1T are predicted slow: at the same t, p and micro-batches the 1T ran at 177 TFLOP/s
    /// per GPU here and at 163 in SC21, a year of Megatron-LM between the two that no setting describes.
    /// </summary>
    [Fact]
    public void EveryRowIsPredictedWithinTenPercentAndTheMeanWithinFive()
    {
        var errors = Table5.Select(r => Error(r, output)).ToList();
        output.WriteLine($"mean |error| {errors.Average(Math.Abs):0.0%}, worst {errors.Max(Math.Abs):0.0%}");
        Assert.All(errors, error => Assert.InRange(error, -0.10, 0.10));
        Assert.InRange(errors.Average(Math.Abs), 0, 0.05);
    }

    /// <summary>The relative step-time error of one row, written to <paramref name="output"/>.</summary>
    public static double Error(Row r, ITestOutputHelper? output = null)
    {
        var e = Predict(r);
        Assert.True(e.Valid, string.Join("; ", e.Violations));
        var error = (e.StepSeconds - r.MeasuredSeconds) / r.MeasuredSeconds;
        output?.WriteLine(
            $"{r.Model, 5} {(r.SequenceParallelSelective ? "SP+selective" : "full recompute"), -15} "
                + $"t={r.Tensor} p={r.Pipeline} v={r.VirtualStages} "
                + $"B={r.Batch} b={r.MicroBatch}: measured {r.MeasuredSeconds:0.00} s, predicted "
                + $"{e.StepSeconds:0.00} s, error {error:+0.0%;-0.0%}"
        );
        return error;
    }
}
