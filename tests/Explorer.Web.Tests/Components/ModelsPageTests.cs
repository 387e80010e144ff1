using Bunit;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;
using Explorer.Web.Components.Pages.Models;
using Microsoft.Extensions.DependencyInjection;

namespace Explorer.Web.Tests;

public sealed class ModelsPageTests : BunitTest, IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-models-page-");
    private readonly ModelHost _host;

    public ModelsPageTests()
    {
        _host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = _root.FullName,
                LoadDefaultModels = false,
                Device = "cpu",
            }
        );
        Context.Services.AddSingleton(_host);
    }

    public void Dispose()
    {
        _host.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _root.Delete(true);
    }

    [Fact]
    public async Task ACheckpointInTheModelsFolderLoadsFromThePage()
    {
        var spec = new Explorer.Core.Specs.ModelSpec("tiny", 2, 32, 64, 4, 2, 50, 64);
        using (var decoder = Explorer.Model.Decoder.Decoder.Create(spec))
            Checkpoint.Save(decoder, Path.Combine(_root.FullName, "tiny-ckpt"));
        var cut = Context.Render<Models>();
        cut.Find("[data-testid=load-tiny-ckpt]").Click();
        await cut.WaitForAssertionAsync(
            () => Assert.Contains("tiny-ckpt", cut.Find("[data-testid=live-models]").TextContent),
            TimeSpan.FromSeconds(30)
        );
        await cut.WaitForAssertionAsync(
            () => Assert.Contains("Ready", cut.Find("[data-testid=live-models]").TextContent),
            TimeSpan.FromSeconds(30)
        );
        Assert.NotNull(_host.Find("tiny-ckpt"));
    }

    [Fact]
    public async Task StreamLoadsACheckpointLayerByLayerAndThePageSaysSoAndWhy()
    {
        var spec = new Explorer.Core.Specs.ModelSpec("tiny", 3, 32, 64, 4, 2, 50, 64);
        using (var decoder = Explorer.Model.Decoder.Decoder.Create(spec))
            Checkpoint.Save(decoder, Path.Combine(_root.FullName, "tiny-stream"));
        var cut = Context.Render<Models>();
        cut.Find("[data-testid=stream-tiny-stream]").Click();
        await cut.WaitForAssertionAsync(
            () =>
                Assert.Contains(
                    "streamed, as asked: layer by layer from its files",
                    cut.Find("[data-testid=placement-tiny-stream]").TextContent
                ),
            TimeSpan.FromSeconds(30)
        );
        Assert.True(_host.Find("tiny-stream")!.Decoder.IsStreamed);
        Assert.Contains("would fit", cut.Find("[data-testid=placement-tiny-stream]").TextContent);
    }

    [Fact]
    public void AnEmptyFolderSaysWhatToDo()
    {
        var cut = Context.Render<Models>();
        Assert.Contains("No checkpoint folders here yet", cut.Find("[data-testid=no-checkpoints]").TextContent);
    }
}
