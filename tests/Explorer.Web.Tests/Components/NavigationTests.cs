using Bunit;
using Explorer.Web.Components.Layout;
using MudBlazor;

namespace Explorer.Web.Tests;

public class NavigationTests : BunitTest
{
    [Fact]
    public void OnlyPagesThatExistAreListed()
    {
        var cut = Context.Render<NavMenu>();
        var links = cut.FindComponents<MudNavLink>();
        var routes = typeof(Program)
            .Assembly.GetTypes()
            .SelectMany(t => t.GetCustomAttributes(typeof(Microsoft.AspNetCore.Components.RouteAttribute), false))
            .Cast<Microsoft.AspNetCore.Components.RouteAttribute>()
            .Select(r => r.Template.TrimStart('/'))
            .ToHashSet();
        Assert.NotEmpty(links);
        Assert.All(links, l => Assert.Contains(l.Instance.Href ?? "", routes));
    }
}
