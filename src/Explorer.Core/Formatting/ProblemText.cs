namespace Explorer.Core.Formatting;

/// <summary>
/// The one text form of a refusal with several problems: a summary line, then each problem on a line of its own,
/// indented two spaces. Exceptions carry every problem in this form, so that the command line can print them all and
/// a page can show the count, the first few and the rest on request (<see cref="Split"/>).
/// </summary>
public static class ProblemText
{
    private const string Indent = "  ";

    public static string Join(string summary, IEnumerable<string> problems) =>
        string.Join('\n', problems.Select(p => Indent + p.ReplaceLineEndings(" ")).Prepend(summary));

    /// <summary>
    /// The summary and the problems of a message in <see cref="Join"/>'s form; any other message is all summary.
    /// Lines that are not indented belong to the summary.
    /// </summary>
    public static (string Summary, IReadOnlyList<string> Problems) Split(string message)
    {
        var lines = message.ReplaceLineEndings("\n").Split('\n');
        var summary = new List<string>();
        var problems = new List<string>();
        foreach (var line in lines)
        {
            if (line.StartsWith(Indent, StringComparison.Ordinal) && line.Trim().Length > 0)
                problems.Add(line.Trim());
            else if (line.Trim().Length > 0)
                summary.Add(line.Trim());
        }
        return (string.Join(' ', summary), problems);
    }

    /// <summary>
    /// An exception's message as a person reads it: without the parameter name .NET appends to an argument error
    /// ("(Parameter 'path')") or the actual value it adds on its own line.
    /// </summary>
    public static string Readable(Exception e)
    {
        var message = e.Message;
        if (e is ArgumentOutOfRangeException { ActualValue: { } actual })
            message = message.Replace($"{Environment.NewLine}Actual value was {actual}.", "", StringComparison.Ordinal);
        if (e is ArgumentException { ParamName: { Length: > 0 } name })
            message = message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
        return message;
    }
}
