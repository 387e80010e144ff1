using MudBlazor;

namespace Explorer.Web.Components.Layout;

/// <summary>The app's colours, light and dark.</summary>
public static class ExplorerTheme
{
    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = "#3559c7",
            Secondary = "#c2410c",
            AppbarBackground = "#1f2a44",
        },
        PaletteDark = new PaletteDark
        {
            Primary = "#7aa2ff",
            Secondary = "#fb923c",
        },
    };

    /// <summary>The colour of model A and model B in every chart.</summary>
    public static readonly string[] SideColors = ["#3559c7", "#c2410c"];
}
