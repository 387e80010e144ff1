using Explorer.Web.Views;

namespace Explorer.Web.Tests.Views;

public class LogAxisTicksTests
{
    [Fact]
    public void ARangeOverDecadesIsLabelledAtEveryDecadeInFullNumbers()
    {
        // Residual norms from 3 to 200: the decades 1, 10, 100 and 1,000 (one past each end), nothing between.
        var ticks = LogAxisTicks.For([3.0, 47.5, 200.0]);
        Assert.Equal([1.0, 10, 100, 1000], ticks.Values);
        Assert.Equal(["1", "10", "100", "1,000"], ticks.Labels);
    }

    [Fact]
    public void ARangeInsideOneDecadeIsLabelledAtOneTwoFive()
    {
        var ticks = LogAxisTicks.For(30, 180);
        Assert.Equal([20.0, 50, 100, 200], ticks.Values);
        Assert.Equal(["20", "50", "100", "200"], ticks.Labels);
        var small = LogAxisTicks.For(0.003, 0.04);
        Assert.Equal([0.002, 0.005, 0.01, 0.02, 0.05], small.Values);
        Assert.Equal(["0.002", "0.005", "0.01", "0.02", "0.05"], small.Labels);
    }

    [Fact]
    public void LabelsIncreaseWithTheirValuesAndNothingPositiveMeansNoTicks()
    {
        foreach (var (min, max) in new[] { (1e-6, 3e-2), (0.7, 1.3), (12.0, 9.5e5) })
        {
            var ticks = LogAxisTicks.For(min, max);
            Assert.True(ticks.Values.Count >= 2, $"{min}…{max}");
            Assert.Equal(
                ticks.Values,
                ticks.Labels.Select(l =>
                    double.Parse(l.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture)
                )
            );
            Assert.Equal(ticks.Values.Order(), ticks.Values);
        }
        Assert.Same(LogAxisTicks.Empty, LogAxisTicks.For([0.0, -1, double.NaN]));
    }
}
