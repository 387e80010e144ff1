namespace Explorer.Model.Weights;

/// <summary>A checkpoint that cannot be used, with every problem found, each naming the file or tensor.</summary>
public sealed class CheckpointException(string summary, IReadOnlyList<string> problems)
    : Exception(problems.Count == 0 ? summary : Explorer.Core.Formatting.ProblemText.Join(summary, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;

    public CheckpointException(string message)
        : this(message, []) { }
}
