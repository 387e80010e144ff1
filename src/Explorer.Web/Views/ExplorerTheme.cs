using MudBlazor;

namespace Explorer.Web.Views;

/// <summary>The app's colours, light and dark: every chart and swatch takes its colours from here.</summary>
public static class ExplorerTheme
{
    public const string Blue = "#3559c7";
    public const string Orange = "#c2410c";
    public const string Teal = "#2a9d8f";
    public const string Purple = "#8e44ad";
    public const string Amber = "#e9a23b";
    public const string Rose = "#d1495b";
    public const string Cyan = "#00798c";
    public const string Green = "#6a994e";
    public const string Sand = "#e9c46a";
    public const string Slate = "#8e9aaf";
    public const string Red = "#c0392b";

    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = Blue,
            Secondary = Orange,
            AppbarBackground = "#1f2a44",
        },
        PaletteDark = new PaletteDark { Primary = "#7aa2ff", Secondary = "#fb923c" },
    };

    /// <summary>The colour of model A and model B in every chart.</summary>
    public static readonly string[] SideColors = [Blue, Orange];

    /// <summary>Colours for a series of things (pipeline stages, training runs), in order; repeated past the
    /// eighth.</summary>
    public static readonly string[] Series = [Blue, Orange, Teal, Purple, Amber, Rose, Cyan, Green];
}
