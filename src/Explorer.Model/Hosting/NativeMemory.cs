using System.Runtime.InteropServices;

namespace Explorer.Model.Hosting;

/// <summary>
/// glibc keeps memory libtorch has freed, so resident memory creeps up forward after forward; malloc_trim hands
/// it back. Called after each traced forward. A no-op where glibc is absent.
/// </summary>
public static partial class NativeMemory
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    private const int MTrimThreshold = -1, MMmapThreshold = -3;
    private static bool _unavailable;
    private static int _configured;

    /// <summary>
    /// Keeps libtorch's per-forward temporaries (up to 32 MB each) in the heap instead of fresh mmaps, so a forward
    /// does not page-fault its working memory in again every time, and lets freed memory stay until
    /// <see cref="Trim"/>. Called once, before the first forward.
    /// </summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1 || !OperatingSystem.IsLinux())
            return;
        try
        {
            MallOpt(MMmapThreshold, 32 << 20);
            MallOpt(MTrimThreshold, 512 << 20);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }

    public static void Trim()
    {
        if (_unavailable || !OperatingSystem.IsLinux())
            return;
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }

    /// <summary>Resident memory of this process, in bytes.</summary>
    public static long Resident()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        process.Refresh();
        return process.WorkingSet64;
    }
}
