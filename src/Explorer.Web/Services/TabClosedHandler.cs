using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Explorer.Web.Services;

/// <summary>Whether this tab's connection is up: pages skip browser calls (such as keeping the URL in step) when
/// not.</summary>
public sealed class TabConnection
{
    public bool Up { get; internal set; } = true;
}

/// <summary>
/// One per circuit (tab). When the tab's connection goes (closed, navigated away, network lost), its running or
/// queued forward is cancelled at once rather than when Blazor finally drops the circuit minutes later: the worker
/// skips it and the other tabs' work moves up.
/// </summary>
public sealed class TabClosedHandler(PromptSession session, TabConnection connection) : CircuitHandler
{
    public override Task OnConnectionDownAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        connection.Up = false;
        session.Cancel();
        return Task.CompletedTask;
    }

    public override Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        connection.Up = true;
        return Task.CompletedTask;
    }
}
