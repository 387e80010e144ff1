using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class ComparePairTests
{
    [Theory]
    [InlineData(null, "deepseek-7b-mini", null)]
    [InlineData("", "deepseek-7b-mini", null)]
    [InlineData("false", "deepseek-7b-mini", null)]
    [InlineData("true", "deepseek-7b-mini", "deepseek-67b-mini")] // older links: the two minis
    [InlineData("TRUE", "deepseek-67b-mini", "deepseek-7b-mini")]
    [InlineData("true", "my-checkpoint", "deepseek-67b-mini")] // a checkpoint against the 95-layer mini
    [InlineData("org/model", "deepseek-7b-mini", "org/model")]
    [InlineData(" maybe ", "deepseek-7b-mini", "maybe")] // named as given; the run says it is not live
    public void TheUrlNamesTheSecondModel(string? query, string model, string? expected) =>
        Assert.Equal(expected, ComparePair.FromQuery(query, model));

    [Fact]
    public void AnAbsurdlyLongNameTurnsCompareOff() =>
        Assert.Null(ComparePair.FromQuery(new string('x', 5000), "deepseek-7b-mini"));

    [Fact]
    public void AModelIsNotComparedWithItself()
    {
        Assert.Equal(["a"], ComparePair.Models("a", "a"));
        Assert.Equal(["a"], ComparePair.Models("a", null));
        Assert.Equal(["a", "b"], ComparePair.Models("a", "b"));
    }
}
