using System.Runtime.InteropServices;

namespace Explorer.Model.Hosting;

/// <summary>
/// This process's native memory on Linux: glibc's malloc settings for libtorch's temporaries (<see cref="Configure"/>,
/// once, by the host or the CLI as they start), handing freed memory back (<see cref="Trim"/>: glibc keeps what
/// libtorch frees, so resident memory creeps up forward after forward; the model host trims every 16th traced forward),
/// kernel advice for weight buffers, and resident figures. No-ops where glibc is absent.
/// </summary>
public static partial class ProcessMemory
{
    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int MAdvise(nint address, nuint length, int advice);

    private const int MTrimThreshold = -1,
        MMmapThreshold = -3,
        MAdvHugePage = 14,
        MAdvPopulateRead = 22,
        MAdvDontNeed = 4;
    private const int EFault = 14,
        EIo = 5;
    private const long HugePage = 2L << 20;
    private static bool _unavailable;
    private static int _configured;

    /// <summary>
    /// Keeps libtorch's per-forward temporaries (up to 32 MB each) in the heap instead of fresh mmaps, so a forward
    /// does not page-fault its working memory in again every time, and lets freed memory stay until
    /// <see cref="Trim"/>. Process-wide: called once as a host or the CLI starts, never by building a model.
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

    /// <summary>
    /// Asks the kernel to back [address, address + length) with 2 MiB pages where transparent huge pages are on
    /// "madvise" (Debian's default). Filling fresh memory then takes one page fault per 2 MiB instead of per 4 KiB: at
    /// 4 KiB a fault, reading a checkpoint into fresh tensors is bound by the faults, not the copy.
    /// Only whole huge pages inside the range are advised; a no-op elsewhere or where it fails.
    /// </summary>
    public static void AdviseHugePages(nint address, long length)
    {
        if (_unavailable || !OperatingSystem.IsLinux() || length < HugePage)
            return;
        var start = (address + (nint)(HugePage - 1)) & ~(nint)(HugePage - 1);
        var end = (address + (nint)length) & ~(nint)(HugePage - 1);
        if (end <= start)
            return;
        try
        {
            MAdvise(start, (nuint)(end - start), MAdvHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
        }
    }

    /// <summary>
    /// Maps every page of a file mapping's [address, address + length) in one call (MADV_POPULATE_READ, Linux 5.14+)
    /// instead of one fault per 16 pages as a first read would: 7B weights mapped 2–3 times faster so. Returns false
    /// where the kernel does not offer it; the pages then come in as they are read.
    /// </summary>
    public static bool PopulateRead(nint address, long length) => Populate(address, length) == Population.Populated;

    /// <summary>What <see cref="Populate"/> did.</summary>
    public enum Population
    {
        /// <summary>Every page of the range is mapped.</summary>
        Populated,

        /// <summary>Not Linux, or a kernel before 5.14: nothing was done.</summary>
        Unsupported,

        /// <summary>Reading the range would raise SIGBUS (the file behind it shrank, or its pages could not be
        /// read).</summary>
        Faulted,
    }

    /// <summary>
    /// MADV_POPULATE_READ over [address, address + length): maps every page now, or says the range cannot be read.
    /// A mapped file truncated under the process faults the first read past its end with SIGBUS, which kills the
    /// process; the kernel reports the same condition here as EFAULT (or EIO), which a caller can turn into a message.
    /// </summary>
    public static Population Populate(nint address, long length)
    {
        if (_unavailable || !OperatingSystem.IsLinux() || length <= 0)
            return Population.Unsupported;
        var start = address & ~(nint)4095;
        try
        {
            if (MAdvise(start, (nuint)(address + (nint)length - start), MAdvPopulateRead) == 0)
                return Population.Populated;
            return Marshal.GetLastPInvokeError() is EFault or EIo ? Population.Faulted : Population.Unsupported;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
            return Population.Unsupported;
        }
    }

    /// <summary>
    /// MADV_DONTNEED over the pages of [address, address + length) of a read-only file mapping: they leave this
    /// process's page tables (the page cache keeps them while it has room); a later read maps them again.
    /// </summary>
    public static void DropPages(nint address, long length)
    {
        if (_unavailable || !OperatingSystem.IsLinux() || length <= 0)
            return;
        var start = address & ~(nint)4095;
        try
        {
            MAdvise(start, (nuint)(address + (nint)length - start), MAdvDontNeed);
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

    /// <summary>
    /// Resident memory that only this process holds (RssAnon on Linux: its heap and tensors, not file pages the kernel
    /// can drop and read again); the whole resident figure elsewhere.
    /// </summary>
    public static long AnonymousResident() => StatusBytes("RssAnon:") ?? Resident();

    /// <summary>Resident file pages mapped by this process (RssFile on Linux: pages the kernel can drop); 0
    /// elsewhere.</summary>
    public static long FileResident() => StatusBytes("RssFile:") ?? 0;

    /// <summary>The most resident memory this process has had (VmHWM on Linux; the current figure elsewhere).</summary>
    public static long PeakResident() => StatusBytes("VmHWM:") ?? Resident();

    /// <summary>A "Key: N kB" line of /proc/self/status in bytes; null where there is none (not Linux).</summary>
    private static long? StatusBytes(string key)
    {
        if (OperatingSystem.IsLinux())
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return null;
    }
}
