using Explorer.Model.Pipeline;

namespace Explorer.Model.Tests;

public class ThreadAffinityTests
{
    [Fact]
    public void APinnedThreadMayRunOnlyOnItsCore()
    {
        if (!OperatingSystem.IsLinux())
            return; // pinning is Linux-only; elsewhere the call leaves the thread alone
        string? allowed = null;
        var last = Environment.ProcessorCount - 1;
        var thread = new Thread(() =>
        {
            Assert.True(ThreadAffinity.PinCurrentThread(last, 1));
            allowed = File.ReadAllLines("/proc/thread-self/status").Single(l => l.StartsWith("Cpus_allowed_list:")).Split(':')[1].Trim();
        });
        thread.Start();
        thread.Join();
        Assert.Equal(last.ToString(), allowed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(64)]
    public void StagesShareTheCoresAndEachHasAtLeastOne(int stages)
    {
        var threads = PipelineRun.ThreadsPerStage(stages);
        Assert.Equal(Math.Max(1, Environment.ProcessorCount / stages), threads);
        Assert.True(threads >= 1);
    }
}
