using Explorer.Core.Formatting;

namespace Explorer.Web.Views;

/// <summary>
/// A refusal or failure as every page shows it (<c>ErrorSummary</c>): one headline with the count, the first few
/// problems, and the rest on request. A message of one problem is its headline alone.
/// </summary>
public sealed record ProblemSummary(string Summary, IReadOnlyList<string> Problems)
{
    /// <summary>Problems listed before the rest is asked for.</summary>
    public const int FirstCount = 3;

    /// <summary>Most problems a page lists when asked for all; the command line lists every one.</summary>
    public const int MostListed = 1000;

    public static ProblemSummary Of(string message)
    {
        var (summary, problems) = ProblemText.Split(message);
        return new ProblemSummary(summary, problems);
    }

    public string Headline =>
        Problems.Count switch
        {
            0 => Summary,
            1 => $"{Summary} {Problems[0]}",
            var n => $"{Summary.TrimEnd(':', ' ', '.')}: {n:N0} problems.",
        };

    /// <summary>What is listed under the headline before the rest is asked for.</summary>
    public IReadOnlyList<string> First => Problems.Count <= 1 ? [] : Problems.Take(FirstCount).ToList();

    /// <summary>Problems not listed until asked for.</summary>
    public int Hidden => Problems.Count <= 1 ? 0 : Math.Max(0, Problems.Count - FirstCount);

    /// <summary>What is listed when all are asked for (at most <see cref="MostListed"/>).</summary>
    public IReadOnlyList<string> Listed => Problems.Count <= 1 ? [] : Problems.Take(MostListed).ToList();

    /// <summary>Problems past <see cref="MostListed"/>, which only the command line lists.</summary>
    public int Unlisted => Math.Max(0, Problems.Count - MostListed);
}
