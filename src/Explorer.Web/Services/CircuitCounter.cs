using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Explorer.Web.Services;

/// <summary>Counts the open Blazor circuits (browser tabs) for the health endpoint.</summary>
public sealed class CircuitCounter : CircuitHandler
{
    private int _open;
    private long _opened;

    public int Open => Volatile.Read(ref _open);
    public long Opened => Interlocked.Read(ref _opened);

    public override Task OnCircuitOpenedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _open);
        Interlocked.Increment(ref _opened);
        return Task.CompletedTask;
    }

    public override Task OnCircuitClosedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        Interlocked.Decrement(ref _open);
        return Task.CompletedTask;
    }
}
