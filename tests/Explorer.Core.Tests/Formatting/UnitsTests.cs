using Explorer.Core.Formatting;

namespace Explorer.Core.Tests;

public class UnitsTests
{
    [Theory]
    [InlineData(6_910_365_696d, "6.91 B")]
    [InlineData(419_430_400d, "419 M")]
    [InlineData(8192d, "8.19 K")]
    [InlineData(12d, "12")]
    public void Counts(double value, string text) => Assert.Equal(text, Units.Count(value));

    [Theory]
    [InlineData(491_520d, "480 KiB")]
    [InlineData(1024d * 1024 * 1024 * 1.5, "1.50 GiB")]
    [InlineData(100d, "100 B")]
    public void Bytes(double value, string text) => Assert.Equal(text, Units.Bytes(value));

    [Fact]
    public void PercentIsSigned() => Assert.Equal(("+14.9%", "-2.0%"), (Units.Percent(0.1492), Units.Percent(-0.02)));
}
