using System.CommandLine;
using System.Text.Json;
using Explorer.Core.Formatting;
using Explorer.Core.Pipeline;
using Explorer.Model.Weights;

namespace Explorer.Cli;

/// <summary>
/// How every <c>explorer</c> command runs its action: a user error (a bad value, file, checkpoint or plan) prints
/// <c>error:</c> and the message as a person reads it, every problem of a refusal on its own line, and exits with
/// <see cref="ExitCodes.BadInput"/>; a cancelled run says what it kept and exits with
/// <see cref="ExitCodes.Cancelled"/>. Anything else is a fault and propagates.
/// </summary>
internal static class CommandAction
{
    public static void Set(Command command, TextWriter error, Func<ParseResult, int> action) =>
        command.SetAction(result => Guard(error, () => action(result)));

    public static void Set(
        Command command,
        TextWriter error,
        Func<ParseResult, CancellationToken, Task<int>> action,
        string cancelled
    ) => command.SetAction((result, cancellation) => GuardAsync(error, () => action(result, cancellation), cancelled));

    public static int Guard(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (IsUserError(e))
        {
            return Refuse(error, e);
        }
    }

    private static async Task<int> GuardAsync(TextWriter error, Func<Task<int>> action, string cancelled)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (IsUserError(e))
        {
            return Refuse(error, e);
        }
        catch (OperationCanceledException)
        {
            error.WriteLine($"cancelled; {cancelled}");
            return ExitCodes.Cancelled;
        }
    }

    /// <summary>What a user can fix: their input, their files, or the state they asked for.</summary>
    public static bool IsUserError(Exception e) =>
        e
            is ArgumentException
                or CheckpointException
                or PlanException
                or InvalidOperationException
                or IOException
                or JsonException
                or UnauthorizedAccessException;

    private static int Refuse(TextWriter error, Exception e)
    {
        error.WriteLine($"error: {ProblemText.Readable(e)}");
        return ExitCodes.BadInput;
    }
}
