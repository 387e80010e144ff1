using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Weights;

namespace Explorer.Model.Tests.Hosting;

/// <summary>
/// Folders as people keep models: a Hugging Face hub cache (snapshot files are relative links into ../../blobs),
/// links inside the models folder, and links that leave it.
/// </summary>
public sealed class ModelsFolderTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("explorer-folder-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Dir(params string[] parts) =>
        Directory.CreateDirectory(Path.Combine([_dir.FullName, .. parts])).FullName;

    /// <summary>
    /// Writes a checkpoint into <c>cache/models--ORG--NAME</c> as huggingface_hub lays it out: each file's bytes in
    /// blobs/ under a made-up hash, the snapshot's files relative links to them, refs/main naming the snapshot.
    /// </summary>
    private static void HubModel(
        string cache,
        string org,
        string name,
        string revision,
        ModelSpec spec,
        bool writeMain = true
    )
    {
        var repo = Path.Combine(cache, $"models--{org}--{name}");
        var staging = Directory.CreateTempSubdirectory("explorer-hub-").FullName;
        using (var decoder = TestModels.Build(spec))
            Checkpoint.Save(decoder, staging, maxShardBytes: 20_000);
        var blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        var snapshot = Directory.CreateDirectory(Path.Combine(repo, "snapshots", revision)).FullName;
        foreach (var file in Directory.GetFiles(staging))
        {
            var blob = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file)));
            if (!File.Exists(Path.Combine(blobs, blob)))
                File.Move(file, Path.Combine(blobs, blob));
            File.CreateSymbolicLink(
                Path.Combine(snapshot, Path.GetFileName(file)),
                Path.Combine("..", "..", "blobs", blob)
            );
        }
        Directory.Delete(staging, true);
        if (writeMain)
        {
            Directory.CreateDirectory(Path.Combine(repo, "refs"));
            File.WriteAllText(Path.Combine(repo, "refs", "main"), revision);
        }
    }

    [Fact]
    public async Task AHubCacheAsTheModelsFolderListsAndLoadsOrgSlashName()
    {
        var cache = Dir("hub");
        HubModel(cache, "deepseek-ai", "tiny-llm", "0123456789abcdef0123456789abcdef01234567", TestModels.Small);
        var folder = new ModelsFolder(cache);
        var entry = Assert.Single(folder.Checkpoints());
        Assert.Equal("deepseek-ai/tiny-llm", entry.Name);
        Assert.Equal("0123456789abcdef0123456789abcdef01234567", entry.Revision);

        await using var host = new ModelHost(
            new ModelHostOptions
            {
                ModelsFolder = cache,
                LoadDefaultModels = false,
                Device = "cpu",
            }
        );
        var status = await host.LoadCheckpointAsync("deepseek-ai/tiny-llm");
        Assert.True(status.State == ModelState.Ready, status.Message);
        Assert.Contains("hub cache deepseek-ai/tiny-llm @ 0123456789ab", status.Source);
        using var expected = TestModels.Build(TestModels.Small);
        using var tokens = TestModels.Tokens(3, 1, 4, 1, 5);
        Assert.Equal(
            TestModels.ToArray(expected.Logits(tokens)),
            TestModels.ToArray(host.Find("deepseek-ai/tiny-llm")!.Decoder.Logits(tokens))
        );
    }

    [Fact]
    public void AConfiguredHubCacheIsListedBesideTheModelsFolder()
    {
        var models = Dir("models");
        using (var decoder = TestModels.Build(TestModels.Tiny))
            Checkpoint.Save(decoder, Path.Combine(models, "mine"));
        var cache = Dir("cache");
        HubModel(cache, "org", "one", "aaaa", TestModels.Tiny);
        HubModel(cache, "solo", "", "bbbb", TestModels.Tiny); // "models--solo--" is not a model folder
        Directory.CreateDirectory(Path.Combine(cache, "models--half", "snapshots")); // no snapshot yet
        var folder = new ModelsFolder(models, cache);
        Assert.Equal(["mine", "org/one"], folder.Checkpoints().Select(c => c.Name));
        Assert.Equal(Path.Combine(cache, "models--org--one", "snapshots", "aaaa"), folder.Resolve("org/one").Path);
    }

    [Fact]
    public void WithoutRefsMainTheNewestSnapshotIsTaken()
    {
        var cache = Dir("cache");
        HubModel(cache, "org", "m", "old", TestModels.Tiny, writeMain: false);
        HubModel(cache, "org", "m", "new", TestModels.Tiny, writeMain: false);
        var snapshots = Path.Combine(cache, "models--org--m", "snapshots");
        Directory.SetLastWriteTimeUtc(Path.Combine(snapshots, "old"), DateTime.UtcNow.AddDays(-2));
        Directory.SetLastWriteTimeUtc(Path.Combine(snapshots, "new"), DateTime.UtcNow.AddDays(-1));
        Assert.Equal("new", new ModelsFolder(cache).Resolve("org/m").Revision);
    }

    [Fact]
    public void ALinkInsideTheModelsFolderIsFollowedAndOneLeavingItIsRefused()
    {
        var models = Dir("models");
        using (var decoder = TestModels.Build(TestModels.Tiny))
            Checkpoint.Save(decoder, Path.Combine(models, "store", "real"));
        Directory.CreateSymbolicLink(Path.Combine(models, "alias"), Path.Combine("store", "real"));
        var folder = new ModelsFolder(models);
        Assert.Contains("alias", folder.Checkpoints().Select(c => c.Name));
        Assert.Equal(Path.Combine(models, "alias"), folder.Resolve("alias").Path);

        var outside = Dir("outside");
        using (var decoder = TestModels.Build(TestModels.Tiny))
            Checkpoint.Save(decoder, outside);
        Directory.CreateSymbolicLink(Path.Combine(models, "escape"), outside);
        Assert.Contains(
            "outside the models folder",
            Assert.Throws<ArgumentException>(() => folder.Resolve("escape")).Message
        );

        // A file link leaving the folder is refused too, even in a folder that is not a link.
        var leaky = Dir("models", "leaky");
        File.Copy(Path.Combine(outside, Checkpoint.ConfigFile), Path.Combine(leaky, Checkpoint.ConfigFile));
        File.CreateSymbolicLink(
            Path.Combine(leaky, Checkpoint.SingleFile),
            Path.Combine(outside, Checkpoint.SingleFile)
        );
        var e = Assert.Throws<ArgumentException>(() => folder.Resolve("leaky"));
        Assert.Contains("model.safetensors is a link to", e.Message);
        Assert.Contains("outside the models folder", e.Message);
    }

    [Fact]
    public void AHubSnapshotWhoseBlobLeavesTheCacheIsRefused()
    {
        var cache = Dir("cache");
        HubModel(cache, "org", "m", "rev", TestModels.Tiny);
        var outside = Dir("elsewhere");
        var link = Path.Combine(cache, "models--org--m", "snapshots", "rev", Checkpoint.ConfigFile);
        File.Copy(link, Path.Combine(outside, "config.json"));
        File.Delete(link);
        File.CreateSymbolicLink(link, Path.Combine(outside, "config.json"));
        Assert.Contains(
            "outside the models folder",
            Assert.Throws<ArgumentException>(() => new ModelsFolder(cache).Resolve("org/m")).Message
        );
    }

    [Fact]
    public void AModelsFolderThatIsItselfALinkStillResolvesItsOwnLinks()
    {
        var real = Dir("real-models");
        HubModel(real, "org", "m", "rev", TestModels.Tiny);
        var linked = Path.Combine(_dir.FullName, "linked-models");
        Directory.CreateSymbolicLink(linked, real);
        Assert.Equal("rev", new ModelsFolder(linked).Resolve("org/m").Revision);
    }

    [Fact]
    public void TheStandardHubCacheIsFoundAsHuggingfaceHubFindsIt()
    {
        var home = Dir("home");
        var env = new Dictionary<string, string?> { ["HOME"] = home };
        Assert.Null(HubCacheLocation.Choose(null, k => env.GetValueOrDefault(k))); // not there: none
        var standard = Dir("home", ".cache", "huggingface", "hub");
        Assert.Equal(standard, HubCacheLocation.Choose(null, k => env.GetValueOrDefault(k)));
        env["HF_HOME"] = Dir("hf");
        Assert.Null(HubCacheLocation.Choose(null, k => env.GetValueOrDefault(k))); // HF_HOME/hub does not exist
        var hfHub = Dir("hf", "hub");
        Assert.Equal(hfHub, HubCacheLocation.Choose(null, k => env.GetValueOrDefault(k)));
        env["HF_HUB_CACHE"] = standard;
        Assert.Equal(standard, HubCacheLocation.Choose(null, k => env.GetValueOrDefault(k)));
        Assert.Equal("/configured", HubCacheLocation.Choose("/configured", k => env.GetValueOrDefault(k)));
        Assert.Null(HubCacheLocation.Choose("none", k => env.GetValueOrDefault(k)));
    }
}
