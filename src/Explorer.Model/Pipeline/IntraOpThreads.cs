using System.Runtime.InteropServices;

namespace Explorer.Model.Pipeline;

/// <summary>
/// The intra-op threads of the calling thread only: OpenMP's <c>omp_set_num_threads</c> in the libgomp libtorch
/// loaded, an OpenMP setting of the calling thread's own. Not <c>torch.set_num_threads</c>: that also resizes
/// process-wide pools while other threads may be running operations on them.
/// </summary>
public static class IntraOpThreads
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void SetNumThreads(int threads);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int GetMaxThreads();

    private static readonly Lazy<(SetNumThreads Set, GetMaxThreads Get)?> OpenMp = new(Find);

    /// <summary>Sets the calling thread's OpenMP team size; false where libtorch's OpenMP cannot be found (then nothing
    /// changes).</summary>
    public static bool SetForCurrentThread(int threads)
    {
        if (OpenMp.Value is not { } omp)
            return false;
        omp.Set(Math.Max(1, threads));
        return true;
    }

    /// <summary>The calling thread's OpenMP team size, or null where libtorch's OpenMP cannot be found.</summary>
    public static int? ForCurrentThread() => OpenMp.Value?.Get();

    private static (SetNumThreads, GetMaxThreads)? Find()
    {
        if (!OperatingSystem.IsLinux())
            return null;
        _ = TorchSharp.torch.get_num_threads(); // libtorch, and the libgomp it links, are loaded
        // The libgomp libtorch itself loaded (TorchSharp ships its own, renamed), not whichever the system has.
        var path = File.ReadLines("/proc/self/maps")
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
            .FirstOrDefault(p =>
                p is not null
                && p.StartsWith('/')
                && Path.GetFileName(p).StartsWith("libgomp", StringComparison.Ordinal)
            );
        if (path is null || !NativeLibrary.TryLoad(path, out var library))
            return null;
        if (
            !NativeLibrary.TryGetExport(library, "omp_set_num_threads", out var set)
            || !NativeLibrary.TryGetExport(library, "omp_get_max_threads", out var get)
        )
            return null;
        return (
            Marshal.GetDelegateForFunctionPointer<SetNumThreads>(set),
            Marshal.GetDelegateForFunctionPointer<GetMaxThreads>(get)
        );
    }
}
