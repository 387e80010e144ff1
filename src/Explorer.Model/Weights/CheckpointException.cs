namespace Explorer.Model.Weights;

/// <summary>A checkpoint that cannot be used, with every problem found, each naming the file or tensor.</summary>
public sealed class CheckpointException(string summary, IReadOnlyList<string> problems)
    : Exception(
        problems.Count == 0
            ? summary
            : summary
                + Environment.NewLine
                + string.Join(Environment.NewLine, problems.Take(50).Select(p => "  " + p))
                + (problems.Count > 50 ? $"{Environment.NewLine}  … and {problems.Count - 50} more" : "")
    )
{
    public IReadOnlyList<string> Problems { get; } = problems;

    public CheckpointException(string message)
        : this(message, []) { }
}
