using System.Runtime.InteropServices;

namespace Explorer.Model.Pipeline;

/// <summary>
/// Pins the calling thread to a set of cores (Linux), so that stage threads sharing a small machine each keep a core
/// of their own instead of being stacked on one by the scheduler (which doubled a 2-stage run's time, at random).
/// Elsewhere, or when the kernel refuses, the thread is left as it is.
/// </summary>
public static partial class ThreadAffinity
{
    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int pid, nuint size, ulong[] mask);

    /// <summary>Cores [<paramref name="first"/>, first + count) modulo the machine's; true when the kernel took
    /// it.</summary>
    public static bool PinCurrentThread(int first, int count)
    {
        if (!OperatingSystem.IsLinux())
            return false;
        var cores = Environment.ProcessorCount;
        var mask = new ulong[(cores + 63) / 64];
        for (var i = 0; i < Math.Max(1, Math.Min(count, cores)); i++)
        {
            var core = ((first + i) % cores + cores) % cores;
            mask[core / 64] |= 1UL << (core % 64);
        }
        try
        {
            return SchedSetAffinity(0, (nuint)(mask.Length * sizeof(ulong)), mask) == 0; // 0: the calling thread
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }
}
