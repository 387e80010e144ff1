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
            allowed = File.ReadAllLines("/proc/thread-self/status")
                .Single(l => l.StartsWith("Cpus_allowed_list:"))
                .Split(':')[1]
                .Trim();
        });
        thread.Start();
        thread.Join();
        Assert.Equal(last.ToString(), allowed);
    }

    [Fact]
    public void IntraOpThreadsChangeForTheCallingThreadOnly()
    {
        if (!OperatingSystem.IsLinux())
            return;
        var outside = IntraOpThreads.ForCurrentThread();
        int? inside = null;
        var thread = new Thread(() =>
        {
            Assert.True(IntraOpThreads.SetForCurrentThread(1));
            inside = IntraOpThreads.ForCurrentThread();
        });
        thread.Start();
        thread.Join();
        Assert.Equal(1, inside);
        Assert.Equal(outside, IntraOpThreads.ForCurrentThread());
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
