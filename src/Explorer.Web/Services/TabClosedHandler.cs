using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Explorer.Web.Services;

/// <summary>
/// One per circuit (tab). When the tab's connection goes (closed, navigated away, network lost), its running or
/// queued forward is cancelled at once rather than when Blazor finally drops the circuit minutes later: the worker
/// skips it and the other tabs' work moves up.
/// </summary>
public sealed class TabClosedHandler(PromptSession session) : CircuitHandler
{
    public override Task OnConnectionDownAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        session.Cancel();
        return Task.CompletedTask;
    }
}
