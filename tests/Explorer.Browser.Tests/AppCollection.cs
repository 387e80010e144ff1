namespace Explorer.Browser.Tests;

/// <summary>
/// The browser test classes that need only the app on its default models share one server and one Chromium: one
/// start instead of one per class, and their tests run one after another, beside the soak and the checkpoint pages
/// (which start servers of their own, configured differently).
/// </summary>
[CollectionDefinition(Name)]
public sealed class AppCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "app on its default models";
}
