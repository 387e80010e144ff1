using System.Runtime.InteropServices;
using Explorer.Model.Pipeline;

namespace Explorer.Model.Tests;

public class OmpWaitPolicyTests
{
    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [Fact]
    public void PassiveWaitingReachesTheEnvironmentLibgompReads()
    {
        if (!OperatingSystem.IsLinux())
            return; // libtorch's libgomp is the Linux build's
        // What the process had (CI and this machine set nothing; a user's value must stand).
        var before = Marshal.PtrToStringUTF8(GetEnv(OmpWaitPolicy.Variable));
        var inForce = OmpWaitPolicy.PreferPassive();
        Assert.Equal(before ?? "PASSIVE", inForce);
        // Read back through the C library's getenv, as libgomp reads it: a managed-only variable would read null.
        Assert.Equal(inForce, Marshal.PtrToStringUTF8(GetEnv(OmpWaitPolicy.Variable)));
        Assert.Equal(inForce, OmpWaitPolicy.PreferPassive()); // a value set stays
    }
}
