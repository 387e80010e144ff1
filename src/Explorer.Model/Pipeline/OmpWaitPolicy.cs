using System.Runtime.InteropServices;

namespace Explorer.Model.Pipeline;

/// <summary>
/// OpenMP's wait policy for libtorch's intra-op threads (libgomp's <c>OMP_WAIT_POLICY</c>). By default a thread that
/// finishes its share of an operation spins before it sleeps, waiting for the rest of its team; when anything else
/// wants a core (a browser on the same machine, the server's own rendering), the spinning threads take it from the
/// one the team waits for. Passive, a waiting thread sleeps at once: as fast alone, far faster beside other work on a
/// machine of few cores (docs/benchmarks.md).
/// </summary>
public static class OmpWaitPolicy
{
    /// <summary>The environment variable libgomp reads, once, when libtorch loads it.</summary>
    public const string Variable = "OMP_WAIT_POLICY";

    /// <summary>
    /// Sets <see cref="Variable"/> to PASSIVE in the process's own environment, the one libgomp reads (.NET's
    /// <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not reach it on Unix), unless it is set
    /// already: a user's choice stands. Takes effect only before libtorch loads, so entry points call it first.
    /// Returns the policy in force.
    /// </summary>
    public static string PreferPassive()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return Environment.GetEnvironmentVariable(Variable) ?? "default";
        if (Current() is { Length: > 0 } chosen)
            return chosen;
        return SetEnv(Variable, "PASSIVE", 0) == 0 ? "PASSIVE" : "default";
    }

    /// <summary>The value of <see cref="Variable"/> in the process's own environment, or null.</summary>
    public static string? Current() =>
        OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()
            ? Marshal.PtrToStringUTF8(GetEnv(Variable))
            : Environment.GetEnvironmentVariable(Variable);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv(
        [MarshalAs(UnmanagedType.LPUTF8Str)] string name,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string value,
        int overwrite
    );

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
