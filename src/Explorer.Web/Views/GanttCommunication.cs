using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;

namespace Explorer.Web.Views;

/// <summary>
/// The communication a chosen tensor × pipeline × data configuration adds to its pipeline's Gantt chart: the share of
/// each device's forward and backward that is tensor-parallel collectives (they run inside every layer; in ZB-H1 all
/// in the input-gradient half), and the
/// data-parallel gradient reduction after the last backward (not overlapped, as the estimator counts it).
/// </summary>
public sealed record GanttCommunication(
    IReadOnlyList<double> ForwardShare,
    IReadOnlyList<double> BackwardShare,
    IReadOnlyList<double> InputGradientShare,
    double DataParallelMs,
    string DataParallelName
)
{
    /// <summary>The shares for a plan of <paramref name="plan"/>'s stages, virtual stage j on device j mod p.</summary>
    public static GanttCommunication For(ModelSpec spec, int sequenceLength, ParallelChoice choice, StagePlan plan)
    {
        var config = choice.Config;
        var (forwardMs, backwardMs) = ParallelEstimator.TensorCommunicationMs(
            spec,
            sequenceLength,
            choice.Cluster,
            config
        );
        var devices = config.Pipeline;
        double[] forward = new double[devices],
            backward = new double[devices],
            forwardTime = new double[devices],
            backwardTime = new double[devices],
            inputTime = new double[devices];
        foreach (var stage in plan.Stages)
        {
            var device = stage.Index % devices;
            var layers = Enumerable
                .Range(stage.FirstUnit, stage.UnitCount)
                .Count(u => plan.Units[u].Kind == UnitKind.Layer);
            forward[device] += layers * forwardMs;
            backward[device] += layers * backwardMs;
            forwardTime[device] += stage.Forward;
            backwardTime[device] += stage.InputGradient + stage.WeightGradient;
            inputTime[device] += stage.InputGradient;
        }
        static double Share(double part, double whole) => whole > 0 ? Math.Clamp(part / whole, 0, 1) : 0;
        var name = config.Zero switch
        {
            3 => "data-parallel gradient reduce-scatter and weight all-gathers",
            >= 1 => "data-parallel gradient reduce-scatter (ZeRO)",
            _ => "data-parallel gradient all-reduce",
        };
        return new GanttCommunication(
            Enumerable.Range(0, devices).Select(d => Share(forward[d], forwardTime[d])).ToArray(),
            Enumerable.Range(0, devices).Select(d => Share(backward[d], backwardTime[d])).ToArray(),
            Enumerable.Range(0, devices).Select(d => Share(backward[d], inputTime[d])).ToArray(),
            (choice.Estimate.Time?.DataComm ?? 0) * 1e3,
            name
        );
    }
}
