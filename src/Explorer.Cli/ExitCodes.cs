namespace Explorer.Cli;

/// <summary>Process exit codes of the <c>explorer</c> command.</summary>
public static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>A bad model name, file, option value or command line.</summary>
    public const int BadInput = 2;

    /// <summary>Cancelled (Ctrl+C), as a shell reports SIGINT: 128 + 2.</summary>
    public const int Cancelled = 130;
}
