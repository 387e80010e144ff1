using Explorer.Core.Formatting;
using Explorer.Web.Views;

namespace Explorer.Web.Tests.Views;

public class ProblemSummaryTests
{
    private static ProblemSummary Of(int problems) =>
        ProblemSummary.Of(
            ProblemText.Join(
                "/m/tokenizer.json cannot be used:",
                Enumerable.Range(0, problems).Select(i => $"problem {i}")
            )
        );

    [Fact]
    public void ManyProblemsShowTheCountAndTheFirstThree()
    {
        var view = Of(117);
        Assert.Equal("/m/tokenizer.json cannot be used: 117 problems.", view.Headline);
        Assert.Equal(["problem 0", "problem 1", "problem 2"], view.First);
        Assert.Equal(114, view.Hidden);
        Assert.Equal(117, view.Listed.Count);
        Assert.Equal(0, view.Unlisted);
    }

    [Fact]
    public void OneProblemIsItsHeadlineAndAPlainMessageIsAsItIs()
    {
        var one = Of(1);
        Assert.Equal("/m/tokenizer.json cannot be used: problem 0", one.Headline);
        Assert.Empty(one.First);
        Assert.Equal(0, one.Hidden);
        var plain = ProblemSummary.Of("Cancelled: the run stopped.");
        Assert.Equal("Cancelled: the run stopped.", plain.Headline);
        Assert.Empty(plain.First);
    }

    [Fact]
    public void APageListsAtMostAThousandAndSaysHowManyMore()
    {
        var view = Of(1005);
        Assert.Equal(ProblemSummary.MostListed, view.Listed.Count);
        Assert.Equal(5, view.Unlisted);
        Assert.Equal(1002, view.Hidden);
    }
}
