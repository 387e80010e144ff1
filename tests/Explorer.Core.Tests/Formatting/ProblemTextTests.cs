using Explorer.Core.Formatting;

namespace Explorer.Core.Tests.Formatting;

public class ProblemTextTests
{
    [Fact]
    public void JoinedProblemsSplitBackIntoTheSummaryAndEveryProblem()
    {
        var problems = Enumerable.Range(0, 117).Select(i => $"model.vocab[\"t{i}\"] is {300 + i}").ToList();
        var message = ProblemText.Join("tokenizer.json cannot be used:", problems);
        Assert.Equal(118, message.Split('\n').Length);
        var (summary, split) = ProblemText.Split(message);
        Assert.Equal("tokenizer.json cannot be used:", summary);
        Assert.Equal(problems, split);
    }

    [Fact]
    public void APrefixStaysWithTheSummaryAndAProblemStaysOnOneLine()
    {
        var message = "m failed to load: " + ProblemText.Join("x cannot be used:", ["one\nline", "two"]);
        var (summary, problems) = ProblemText.Split(message);
        Assert.Equal("m failed to load: x cannot be used:", summary);
        Assert.Equal(["one line", "two"], problems);
        Assert.Equal(
            ("A plain message.", Array.Empty<string>()),
            (ProblemText.Split("A plain message.").Summary, ProblemText.Split("A plain message.").Problems.ToArray())
        );
    }

    [Fact]
    public void ReadableDropsWhatDotNetAddsToArgumentErrors()
    {
        var argument = new ArgumentException("/m/tokenizer.json is not valid JSON.", "path");
        Assert.EndsWith("(Parameter 'path')", argument.Message);
        Assert.Equal("/m/tokenizer.json is not valid JSON.", ProblemText.Readable(argument));
        var range = new ArgumentOutOfRangeException("id", 7, "Token id must be in [0, 5).");
        Assert.Contains("Actual value was 7.", range.Message);
        Assert.Equal("Token id must be in [0, 5).", ProblemText.Readable(range));
        Assert.Equal("as it is", ProblemText.Readable(new InvalidOperationException("as it is")));
    }
}
