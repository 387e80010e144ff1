using Explorer.Core.Specs;
using Explorer.Model.Weights;
using Microsoft.Playwright;
using static TorchSharp.torch;

namespace Explorer.Browser.Tests;

/// <summary>
/// The app on checkpoints as users keep them: a models folder holding a checkpoint whose vocabulary (4,096 rows) is
/// larger than its tokenizer (258 tokens), a 95-layer checkpoint with the 67B's heads (64 query heads reading 8 KV
/// heads) to stream, and a Hugging Face hub cache whose snapshot files are links into blobs/.
/// </summary>
public sealed class CheckpointPagesFixture : BrowserFixture
{
    public const string Padded = "padded-vocab";
    public const string Hubbed = "org/hubbed";
    public const string Deep = "deep-gqa";
    public const string Llama3 = "llama3-shaped";
    public const string Broken = "broken-tokenizer";

    /// <summary>Problems in <see cref="Broken"/>'s tokenizer.json: 117 tokens with ids past its vocabulary.</summary>
    public const int BrokenProblems = 117;
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-browser-ckpt-");

    protected override async Task<IReadOnlyDictionary<string, string>?> PrepareAsync()
    {
        var spec = MiniPresets.DeepSeek7BMini with { Layers = 3 };
        var models = Path.Combine(_root.FullName, "models");
        RandomCheckpoint.Write(spec, Path.Combine(models, Padded), ScalarType.BFloat16, long.MaxValue, seed: 5);
        // The 67B's depth and heads at width 256 (head dim 4): 95 layers of 0.8 MB in bf16, in 5 MB shards.
        var deep = MiniPresets.DeepSeek67BMini with
        {
            HiddenSize = 256,
            IntermediateSize = 344,
            AttentionHeads = 64,
            KeyValueHeads = 8,
        };
        RandomCheckpoint.Write(deep, Path.Combine(models, Deep), ScalarType.BFloat16, 5_000_000, seed: 7);
        // Llama 3.1 8B's depth, GQA 4:1 and llama3 rope scaling at width 256: what a user compares against DeepSeek's
        // 30 layers.
        var llama3 = ModelPresets.Llama31_8B with
        {
            HiddenSize = 256,
            IntermediateSize = 896,
            VocabularySize = 512,
            ContextLength = 2048,
        };
        RandomCheckpoint.Write(llama3, Path.Combine(models, Llama3), ScalarType.BFloat16, 5_000_000, seed: 8);
        var broken = Path.Combine(models, Broken);
        RandomCheckpoint.Write(spec with { Layers = 1 }, broken, ScalarType.BFloat16, long.MaxValue, seed: 9);
        var tokenizer = System.Text.Json.Nodes.JsonNode.Parse(RandomCheckpoint.ByteLevelTokenizerJson())!;
        for (var i = 0; i < BrokenProblems; i++)
            tokenizer["model"]!["vocab"]![$"extra{i}"] = spec.VocabularySize + i;
        await File.WriteAllTextAsync(Path.Combine(broken, "tokenizer.json"), tokenizer.ToJsonString());

        // A hub cache: the files live in blobs/, the snapshot holds relative links to them, refs/main names it.
        var repo = Path.Combine(_root.FullName, "hub", "models--org--hubbed");
        var staging = Path.Combine(_root.FullName, "staging");
        RandomCheckpoint.Write(spec with { Layers = 2 }, staging, ScalarType.BFloat16, 200_000, seed: 6);
        var snapshot = Directory.CreateDirectory(Path.Combine(repo, "snapshots", "c0ffee")).FullName;
        var blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        foreach (var file in Directory.GetFiles(staging))
        {
            var blob = Path.GetFileName(file) + ".blob";
            File.Move(file, Path.Combine(blobs, blob));
            File.CreateSymbolicLink(
                Path.Combine(snapshot, Path.GetFileName(file)),
                Path.Combine("..", "..", "blobs", blob)
            );
        }
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        await File.WriteAllTextAsync(Path.Combine(repo, "refs", "main"), "c0ffee");
        return new Dictionary<string, string>
        {
            ["Models__ModelsFolder"] = models,
            ["Models__HubCache"] = Path.Combine(_root.FullName, "hub"),
            // The lens at every position always runs unasked here: its budget is priced from the forward's own timing
            // of one position, which one stall on a busy machine can put over the default 500 ms even for these
            // tiny models.
            ["Models__AutomaticLensMs"] = "600000",
        };
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _root.Delete(recursive: true);
    }
}

public sealed class CheckpointPagesTests(CheckpointPagesFixture fixture) : IClassFixture<CheckpointPagesFixture>
{
    private async Task<IPage> OpenAsync(string path)
    {
        var page = await fixture.Browser.NewPageAsync(
            new BrowserNewPageOptions
            {
                ViewportSize = new ViewportSize { Width = 1600, Height = 1300 },
            }
        );
        await page.GotoAsync(new Uri(fixture.Server.BaseAddress, path).ToString());
        await page.Locator("[data-testid=app-interactive]")
            .WaitForAsync(new() { State = WaitForSelectorState.Attached, Timeout = 60000 });
        return page;
    }

    private static async Task LoadAsync(IPage page, string name)
    {
        await page.Locator($"[data-testid=\"load-{name}\"]").ClickAsync();
        var row = page.Locator("[data-testid=live-models] tr", new() { HasText = name });
        await Assertions.Expect(row).ToContainTextAsync("Ready", new() { Timeout = 60000 });
    }

    /// <summary>Loads the padded-vocabulary checkpoint from the Models page, opens it on the Layers page and
    /// runs.</summary>
    private async Task<IPage> RunPaddedOnLayersAsync(string query)
    {
        var models = await OpenAsync("/models");
        await LoadAsync(models, CheckpointPagesFixture.Padded);
        await models.CloseAsync();
        var page = await OpenAsync($"/layers?model={CheckpointPagesFixture.Padded}&{query}");
        await page.Locator("[data-testid=prompt-run]").ClickAsync();
        return page;
    }

    [BrowserFact]
    public async Task TheModelsPageListsAndLoadsTheHubCacheAndTheFolder()
    {
        var page = await OpenAsync("/models");
        var checkpoints = page.Locator("[data-testid=checkpoints]");
        await Assertions
            .Expect(checkpoints)
            .ToContainTextAsync(CheckpointPagesFixture.Padded, new() { Timeout = 30000 });
        await Assertions
            .Expect(checkpoints.Locator("tr", new() { HasText = CheckpointPagesFixture.Hubbed }))
            .ToContainTextAsync("c0ffee");
        await LoadAsync(page, CheckpointPagesFixture.Hubbed);
        await Assertions
            .Expect(page.Locator("[data-testid=live-models] tr", new() { HasText = CheckpointPagesFixture.Hubbed }))
            .ToContainTextAsync("hub cache org/hubbed @ c0ffee");
        await page.CloseAsync();
        Assert.DoesNotContain("Unhandled exception", fixture.Server.Log, StringComparison.OrdinalIgnoreCase);
    }

    [BrowserFact]
    public async Task ACheckpointThatCannotLoadSaysHowManyProblemsAndListsThemAllOnRequest()
    {
        var page = await OpenAsync("/models");
        await page.Locator($"[data-testid=\"load-{CheckpointPagesFixture.Broken}\"]").ClickAsync();
        var error = page.Locator($"[data-testid=\"failed-{CheckpointPagesFixture.Broken}\"]");
        await Assertions
            .Expect(error.Locator("[data-testid=error-headline]"))
            .ToContainTextAsync(
                $"tokenizer.json cannot be used: {CheckpointPagesFixture.BrokenProblems} problems.",
                new() { Timeout = 60000 }
            );
        var listed = error.Locator("[data-testid=error-problems] li");
        await Assertions.Expect(listed).ToHaveCountAsync(3);
        await Assertions.Expect(listed.First).ToContainTextAsync("model.vocab[\"extra0\"]");
        await error.Locator("[data-testid=error-more]").ClickAsync();
        await Assertions.Expect(listed).ToHaveCountAsync(CheckpointPagesFixture.BrokenProblems);
        await Assertions.Expect(listed.Last).ToContainTextAsync("model.vocab[\"extra116\"]");
        await error.Locator("[data-testid=error-more]").ClickAsync();
        await Assertions.Expect(listed).ToHaveCountAsync(3);
        var text = await page.Locator("body").InnerTextAsync();
        Assert.DoesNotContain("(Parameter", text);
        Assert.DoesNotContain("Exception", text);
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task TheLayersPageShowsIdsWithoutTokensAndKeepsWorking()
    {
        var page = await RunPaddedOnLayersAsync("prompt=Hello%20padded%20world");
        var lens = page.Locator("[data-testid=logit-lens-0]");
        await lens.Locator(".main-svg").First.WaitForAsync(new() { Timeout = 60000 });
        await Assertions.Expect(page.Locator("[data-testid=token-chips]")).ToContainTextAsync("H");
        // The charts come from the forward; the lens at every position follows. Then a random model over 4,096 rows
        // with 258 tokens predicts ids past the tokenizer 15 times in 16: the lens's cells (the heatmap's text, as
        // Plotly holds it) name them as ids.
        var note = page.Locator(".chart-note", new() { HasText = "final prediction at the last position" });
        await note.WaitForAsync(new() { Timeout = 60000 }); // the last position read
        await Assertions.Expect(note).Not.ToContainTextAsync("being computed", new() { Timeout = 60000 });
        // Plotly redraws the heatmap after the render that changed the note (through the page's interop, later): wait
        // for its data, then read it. Waiting in vain leaves the assertion to say what it holds.
        var expected = 3 * "Hello padded world".Length; // 3 layers × one byte token per character
        try
        {
            await page.WaitForFunctionAsync(
                "n => document.querySelector('[data-testid=logit-lens-0] .js-plotly-plot')?.data?.[0]?.text?.flat()"
                    + ".length === n",
                expected,
                new() { Timeout = 30000 }
            );
        }
        catch (TimeoutException) { }
        var cells = await lens.Locator(".js-plotly-plot").First.EvaluateAsync<string[]>("g => g.data[0].text.flat()");
        Assert.Equal(expected, cells.Length);
        Assert.Contains(cells, c => System.Text.RegularExpressions.Regex.IsMatch(c, @"^<id \d{3,4}>$"));
        await Assertions.Expect(page.Locator("[data-testid=prompt-error]")).ToHaveCountAsync(0);
        await page.Locator("[data-testid=residual-norm] .main-svg").First.WaitForAsync();
        await page.CloseAsync();
        Assert.DoesNotContain("Token id must be in", fixture.Server.Log);
        Assert.DoesNotContain("Unhandled exception", fixture.Server.Log, StringComparison.OrdinalIgnoreCase);
    }

    [BrowserFact]
    public async Task ACheckpointComparesWithAMiniOnRelativeDepthAndTheUrlCarriesBoth()
    {
        var page = await RunPaddedOnLayersAsync("compare=deepseek-67b-mini&prompt=Depth%20against%20depth");
        await page.Locator("[data-testid=token-layer-1] .main-svg").First.WaitForAsync(new() { Timeout = 90000 });
        var legend = await page.Locator("[data-testid=residual-norm] .legend").First.TextContentAsync() ?? "";
        Assert.Contains(CheckpointPagesFixture.Padded, legend);
        Assert.Contains("deepseek-67b-mini", legend);
        Assert.Contains(
            "relative depth",
            await page.Locator("[data-testid=residual-norm] .xtitle").First.TextContentAsync() ?? ""
        );
        Assert.Contains($"model={CheckpointPagesFixture.Padded}", page.Url);
        Assert.Contains("compare=deepseek-67b-mini", page.Url);
        // The 3-layer checkpoint's points sit at 1/3, 2/3, 1 and the 95-layer mini's at l / 95: both end at depth 1.
        var xs = await page.Locator("[data-testid=residual-norm] .js-plotly-plot")
            .First.EvaluateAsync<double[][]>("g => g.data.map(t => t.x.map(Number))");
        Assert.Equal(2, xs.Length);
        Assert.Equal(1.0, xs[0][^1], 9);
        Assert.Equal(1.0, xs[1][^1], 9);
        Assert.Equal(4, xs[0].Length); // boundaries 0…3
        Assert.Equal(96, xs[1].Length); // boundaries 0…95
        await page.CloseAsync();
    }

    [BrowserFact]
    public async Task AStreamed95LayerModelComparesOnRelativeDepthAndShowsItsHeadsByKvHead()
    {
        var models = await OpenAsync("/models");
        await models.Locator($"[data-testid=\"stream-{CheckpointPagesFixture.Deep}\"]").ClickAsync();
        await Assertions
            .Expect(models.Locator("[data-testid=live-models] tr", new() { HasText = CheckpointPagesFixture.Deep }))
            .ToContainTextAsync("Ready", new() { Timeout = 60000 });
        await Assertions
            .Expect(models.Locator($"[data-testid=\"placement-{CheckpointPagesFixture.Deep}\"]"))
            .ToContainTextAsync("streamed, as asked");
        await models.CloseAsync();

        // Against the 30-layer 7B shape on relative depth, as the minis are compared: boundary l of L at l / L (sent
        // with 5 significant digits, as the page sends coordinates: within 5e-5 of the value, relatively).
        var page = await OpenAsync(
            $"/layers?model={CheckpointPagesFixture.Deep}&compare=deepseek-7b-mini&prompt=Depth%20against%20depth"
        );
        await Assertions
            .Expect(page.Locator("[data-testid=compare-models]"))
            .ToHaveTextAsync($"{CheckpointPagesFixture.Deep} (streamed layer by layer) and deepseek-7b-mini");
        await page.Locator("[data-testid=prompt-run]").ClickAsync();
        await page.Locator("[data-testid=token-layer-1] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
        var legend = await page.Locator("[data-testid=residual-norm] .legend").First.TextContentAsync() ?? "";
        Assert.Contains(CheckpointPagesFixture.Deep, legend);
        Assert.Contains("deepseek-7b-mini", legend);
        var xs = await page.Locator("[data-testid=residual-norm] .js-plotly-plot")
            .First.EvaluateAsync<double[][]>("g => g.data.map(t => t.x.map(Number))");
        Assert.Equal(2, xs.Length);
        Assert.Equal(Enumerable.Range(0, 96).Select(l => l / 95.0), xs[0], new RelativeTolerance(5e-5));
        Assert.Equal(Enumerable.Range(0, 31).Select(l => l / 30.0), xs[1], new RelativeTolerance(5e-5));
        await Assertions.Expect(page.Locator("[data-testid=prompt-error]")).ToHaveCountAsync(0);
        await page.CloseAsync();

        // Its 64 heads in 8 groups of 8, each group the heads that read one KV head (head h reads KV head h / 8).
        var attention = await OpenAsync($"/attention?model={CheckpointPagesFixture.Deep}&prompt=Heads%20by%20group");
        await Assertions
            .Expect(attention.Locator("[data-testid=model-placement]"))
            .ToContainTextAsync("streamed layer by layer");
        await attention.Locator("[data-testid=prompt-run]").ClickAsync();
        await attention.Locator("[data-testid=head-grid]").WaitForAsync(new() { Timeout = 120000 });
        await Assertions.Expect(attention.Locator("[data-testid^=kv-group-]")).ToHaveCountAsync(8);
        for (var group = 0; group < 8; group++)
        {
            var heads = await attention
                .Locator($"[data-testid=kv-group-{group}] [data-testid^=head-thumb-]")
                .EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.testid)");
            Assert.Equal(Enumerable.Range(group * 8, 8).Select(h => $"head-thumb-{h}"), heads);
        }
        await attention.CloseAsync();
        Assert.DoesNotContain("Unhandled exception", fixture.Server.Log, StringComparison.OrdinalIgnoreCase);
    }

    [BrowserFact]
    public async Task ALlama3ShapedCheckpointSaysItsDesignAndLinesUpWithTheMiniOnRelativeDepth()
    {
        var models = await OpenAsync("/models");
        await LoadAsync(models, CheckpointPagesFixture.Llama3);
        await Assertions
            .Expect(models.Locator($"[data-testid=\"design-{CheckpointPagesFixture.Llama3}\"]"))
            .ToHaveTextAsync("LLaMA: 32 layers, d = 256, 32/8 heads, vocab 512; llama3 rope ×8");
        await Assertions
            .Expect(models.Locator($"[data-testid=\"config-warning-{CheckpointPagesFixture.Llama3}\"]"))
            .ToHaveCountAsync(0);
        await models.CloseAsync();

        var page = await OpenAsync(
            $"/layers?model={CheckpointPagesFixture.Llama3}&compare=deepseek-7b-mini&prompt=Depth%20against%20depth"
        );
        await page.Locator("[data-testid=prompt-run]").ClickAsync();
        await page.Locator("[data-testid=token-layer-1] .main-svg").First.WaitForAsync(new() { Timeout = 120000 });
        var xs = await page.Locator("[data-testid=residual-norm] .js-plotly-plot")
            .First.EvaluateAsync<double[][]>("g => g.data.map(t => t.x.map(Number))");
        Assert.Equal(2, xs.Length);
        Assert.Equal(Enumerable.Range(0, 33).Select(l => l / 32.0), xs[0], new RelativeTolerance(5e-5));
        Assert.Equal(Enumerable.Range(0, 31).Select(l => l / 30.0), xs[1], new RelativeTolerance(5e-5));
        await Assertions.Expect(page.Locator("[data-testid=prompt-error]")).ToHaveCountAsync(0);
        if (BrowserFixture.ScreenshotFolder is { } folder)
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "layers-compare-families.png") });
        await page.CloseAsync();
        Assert.DoesNotContain("Unhandled exception", fixture.Server.Log, StringComparison.OrdinalIgnoreCase);
    }

    private sealed class RelativeTolerance(double within) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= within * Math.Abs(x);

        public int GetHashCode(double value) => 0;
    }
}
