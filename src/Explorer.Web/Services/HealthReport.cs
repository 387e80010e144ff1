using System.Diagnostics;
using Explorer.Model.Hosting;

namespace Explorer.Web.Services;

/// <summary>What <c>GET /api/health</c> answers: the models' states, the work queue, open tabs and memory.</summary>
public sealed record HealthReport(
    IReadOnlyList<HealthReport.ModelLine> Models,
    int Waiting,
    int PeakWaiting,
    int QueueCapacity,
    long Forwards,
    long Cancelled,
    long CachedTraceBytes,
    int OpenCircuits,
    long CircuitsOpened,
    long ResidentBytes,
    long ManagedBytes
)
{
    public sealed record ModelLine(string Name, string State, string Message, string Source);

    public static HealthReport From(ModelHost host, CircuitCounter circuits)
    {
        using var process = Process.GetCurrentProcess();
        return new HealthReport(
            host.Models.Select(m => new ModelLine(m.Name, m.State.ToString(), m.Message, m.Source)).ToArray(),
            host.Waiting,
            host.PeakWaiting,
            host.Options.QueueCapacity,
            host.Forwards,
            host.Cancelled,
            host.CachedBytes,
            circuits.Open,
            circuits.Opened,
            process.WorkingSet64,
            GC.GetTotalMemory(false)
        );
    }
}
