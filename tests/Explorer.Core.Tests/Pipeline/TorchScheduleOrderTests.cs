using System.Text.Json;
using Explorer.Core.Pipeline;

namespace Explorer.Core.Tests.Pipeline;

/// <summary>
/// The simulator runs torch.distributed.pipelining's own orders: Data/torch-pipeline-orders.json holds what torch
/// 2.11's schedule classes compute for each rank (ZBV, DualPipeV, interleaved zero bubble), dumped on a machine with
/// torch by .device/torch_orders.py; each device of the simulation must run exactly that sequence.
/// </summary>
public class TorchScheduleOrderTests
{
    private static readonly JsonElement Fixture = JsonDocument
        .Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "torch-pipeline-orders.json")))
        .RootElement;

    public static TheoryData<int> Cases() => new(Enumerable.Range(0, Fixture.GetProperty("orders").GetArrayLength()));

    [Theory]
    [MemberData(nameof(Cases))]
    public void EachDeviceRunsTorchsOrder(int index)
    {
        var entry = Fixture.GetProperty("orders")[index];
        var schedule = ScheduleNames.Parse(entry.GetProperty("schedule").GetString()!);
        int p = entry.GetProperty("p").GetInt32(),
            m = entry.GetProperty("m").GetInt32(),
            v = entry.GetProperty("v").GetInt32();
        var virtualStages = SchedulePlacement.UsesVirtualStages(schedule) ? v : 1;
        var stages = SchedulePlacement.Stages(schedule, p, virtualStages);
        // Uneven times, so that an order that differs cannot hide behind ties.
        var times = Enumerable.Range(0, stages).Select(s => new StageTimes(1 + 0.1 * s, 1.3, 0.7)).ToArray();
        var result = ScheduleSimulator.Simulate(schedule, times, m, virtualStages);
        string Code(OpKind kind) =>
            kind switch
            {
                OpKind.Forward => "F",
                OpKind.InputGradient => "I",
                OpKind.WeightGradient => "W",
                _ => "B",
            };
        int Stage(TimelineOp o) =>
            SchedulePlacement.IsV(schedule) ? (o.Chunk == 0 ? o.Device : 2 * p - 1 - o.Device) : o.Chunk * p + o.Device;
        var ranks = entry.GetProperty("ranks");
        for (var rank = 0; rank < p; rank++)
        {
            var expected = ranks[rank].EnumerateArray().Select(a => a.GetString()!).ToArray();
            var actual = result
                .Timeline.Where(o => o.Device == rank)
                .OrderBy(o => o.Start)
                .Select(o => $"{Stage(o)}{Code(o.Kind)}{o.MicroBatch}")
                .ToArray();
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void TheTorchNamesTheExportUsesAreTorchs()
    {
        // get_schedule_class resolved each name the torchtitan export writes to a schedule class.
        var names = Fixture.GetProperty("names");
        foreach (
            var name in new[]
            {
                "ZBVZeroBubble",
                "InterleavedZeroBubble",
                "DualPipeV",
                "Interleaved1F1B",
                "1F1B",
                "GPipe",
            }
        )
            Assert.StartsWith("Schedule", names.GetProperty(name).GetString());
    }
}
