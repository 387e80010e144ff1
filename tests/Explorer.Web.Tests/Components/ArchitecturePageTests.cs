using Bunit;
using Explorer.Core.Accounting;
using Explorer.Core.Specs;
using Explorer.Web.Components.Pages.Architecture;
using Microsoft.AspNetCore.Components.Forms;
using MudBlazor;

namespace Explorer.Web.Tests;

public class ArchitecturePageTests : BunitTest
{
    private IRenderedComponent<Architecture> RenderPage()
    {
        Context.Render<MudPopoverProvider>();
        return Context.Render<Architecture>();
    }

    private static string CostTable(IRenderedComponent<Architecture> cut) =>
        cut.Find("[data-testid=cost-table]").TextContent;

    private static IRenderedComponent<SpecPicker> Picker(IRenderedComponent<Architecture> cut, string side) =>
        cut.FindComponents<SpecPicker>().Single(p => p.Instance.Side == side);

    [Fact]
    public void BothSpecsRenderWithExactTotals()
    {
        var cut = RenderPage();
        var config = cut.Find("[data-testid=config-table]").TextContent;
        Assert.Contains("deepseek-llm-7b", config);
        Assert.Contains("deepseek-llm-67b", config);
        Assert.Contains("8 (GQA 8:1)", config);
        // 7B: 30·202,383,360 + 2·419,430,400 + 4,096; 67B: 95·692,076,544 + 2·838,860,800 + 8,192.
        Assert.Contains((30L * 202_383_360 + 2L * 419_430_400 + 4096).ToString("N0"), CostTable(cut));
        Assert.Contains((95L * 692_076_544 + 2L * 838_860_800 + 8192).ToString("N0"), CostTable(cut));
        // KV bytes per token, bf16: 2·30·4096·2 and 2·95·1024·2.
        Assert.Contains("491,520", CostTable(cut));
        Assert.Contains("389,120", CostTable(cut));
        Assert.Equal(30, cut.FindAll("[data-testid=stack-0] rect.stack-layer").Count);
        Assert.Equal(95, cut.FindAll("[data-testid=stack-1] rect.stack-layer").Count);
    }

    [Fact]
    public void KvCacheFactCallsOutGqa()
    {
        var cut = RenderPage();
        var facts = cut.Find("[data-testid=facts]").TextContent;
        Assert.Contains("deepseek-llm-67b caches 380 KiB per token against 480 KiB for deepseek-llm-7b", facts);
    }

    [Fact]
    public async Task SwitchingAPresetUpdatesTheNumbers()
    {
        var cut = RenderPage();
        var select = Picker(cut, "b").FindComponent<MudSelect<string>>();
        await cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("llama-2-70b"));

        // LLaMA-2-70B: 80·(2·8192² + 2·8192·1024 + 3·8192·28672 + 2·8192) + 2·32000·8192 + 8192.
        long llama70 =
            80L * (2L * 8192 * 8192 + 2L * 8192 * 1024 + 3L * 8192 * 28672 + 2 * 8192) + 2L * 32000 * 8192 + 8192;
        Assert.Contains(llama70.ToString("N0"), CostTable(cut));
        Assert.DoesNotContain("67,425,001,472", CostTable(cut));
        Assert.Equal(80, cut.FindAll("[data-testid=stack-1] rect.stack-layer").Count);
        Assert.Contains("llama-2-70b", cut.Find("[data-testid=config-table]").TextContent);
    }

    [Fact]
    public async Task SequenceLengthChangesKvPerSequence()
    {
        var cut = RenderPage();
        var seq = cut.FindComponents<MudNumericField<int>>()
            .Single(f => f.Instance.Label!.StartsWith("Sequence length"));
        await cut.InvokeAsync(() => seq.Instance.ValueChanged.InvokeAsync(1024));
        Assert.Contains((1024L * 491_520).ToString("N0"), CostTable(cut));
        Assert.Contains("sequence of 1,024", CostTable(cut));
    }

    [Fact]
    public async Task EditingAnInvalidShapeShowsTheFieldAndKeepsTheLastValidFigures()
    {
        var cut = RenderPage();
        var picker = Picker(cut, "a");
        picker.Find("[data-testid=edit-a]").Click();
        var heads = picker
            .FindComponents<MudNumericField<int>>()
            .Single(f => f.Instance.Label == "num_attention_heads");
        await cut.InvokeAsync(() => heads.Instance.ValueChanged.InvokeAsync(30));

        var errors = cut.Find("[data-testid=errors-a]").TextContent;
        Assert.Contains("num_attention_heads", errors);
        Assert.Contains("must divide hidden_size 4096", errors);
        Assert.Contains("6,910,365,696", CostTable(cut));
    }

    [Fact]
    public async Task EditingAValidShapeRecomputes()
    {
        var cut = RenderPage();
        var picker = Picker(cut, "a");
        picker.Find("[data-testid=edit-a]").Click();
        var layers = picker.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "num_hidden_layers");
        await cut.InvokeAsync(() => layers.Instance.ValueChanged.InvokeAsync(32));
        Assert.Contains((32L * 202_383_360 + 2L * 419_430_400 + 4096).ToString("N0"), CostTable(cut));
        Assert.Equal(32, cut.FindAll("[data-testid=stack-0] rect.stack-layer").Count);
        Assert.Contains("deepseek-llm-7b-edited", cut.Find("[data-testid=config-table]").TextContent);
    }

    [Fact]
    public async Task UploadingAConfigReplacesTheSpec()
    {
        var cut = RenderPage();
        var json = """
            {"_name_or_path": "acme/tiny", "hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 12,
             "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 32000}
            """;
        Picker(cut, "b").FindComponent<InputFile>().UploadFiles(InputFileContent.CreateFromText(json, "config.json"));

        // 12·(2·512² + 2·512·128 + 3·512·1376 + 2·512) + 2·32000·512 + 512.
        long expected = 12L * (2 * 512 * 512 + 2 * 512 * 128 + 3 * 512 * 1376 + 2 * 512) + 2L * 32000 * 512 + 512;
        await cut.WaitForAssertionAsync(
            () => Assert.Contains(expected.ToString("N0"), CostTable(cut)),
            TimeSpan.FromSeconds(30)
        );
        Assert.Contains("tiny", cut.Find("[data-testid=config-table]").TextContent);
    }

    [Fact]
    public async Task UploadingABadConfigNamesTheProblemAndKeepsTheSpec()
    {
        var cut = RenderPage();
        Picker(cut, "b")
            .FindComponent<InputFile>()
            .UploadFiles(InputFileContent.CreateFromText("""{"hidden_size": 512}""", "bad.json"));
        await cut.WaitForAssertionAsync(
            () => Assert.Contains("intermediate_size", cut.Find("[data-testid=errors-b]").TextContent),
            TimeSpan.FromSeconds(30)
        );
        Assert.Contains("bad.json was not loaded", cut.Find("[data-testid=errors-b]").TextContent);
        Assert.Contains("67,425,001,472", CostTable(cut));
    }

    [Fact]
    public async Task OversizedUploadIsRefused()
    {
        var cut = RenderPage();
        var big = new string(' ', HfConfigReader.MaxBytes + 10);
        Picker(cut, "a").FindComponent<InputFile>().UploadFiles(InputFileContent.CreateFromText(big, "huge.json"));
        await cut.WaitForAssertionAsync(
            () => Assert.Contains("too large", cut.Find("[data-testid=errors-a]").TextContent),
            TimeSpan.FromSeconds(30)
        );
        Assert.Contains("6,910,365,696", CostTable(cut));
    }

    [Fact]
    public async Task DepthWidthBudgetChangesTheAlternatives()
    {
        var cut = RenderPage();
        var panel = cut.FindComponent<DepthWidthPanel>();
        var rows = () => panel.FindAll("[data-testid=alternatives] tbody tr");
        Assert.Contains(rows(), r => r.ClassList.Contains("base-row") && r.TextContent.Contains("22016"));

        var budget = panel.FindComponents<MudNumericField<double>>().Single();
        await cut.InvokeAsync(() => budget.Instance.ValueChanged.InvokeAsync(-1));
        Assert.Contains("-1 billion parameters is out of range", panel.Markup);
        Assert.Empty(rows());
    }

    [Fact]
    public async Task FixedAspectTradesDepthForWidth()
    {
        var cut = RenderPage();
        var panel = cut.FindComponent<DepthWidthPanel>();
        int[] Widths() =>
            panel
                .FindAll("[data-testid=alternatives] tbody tr")
                .Select(r => int.Parse(r.Children[1].TextContent))
                .ToArray();
        Assert.All(Widths(), d => Assert.Equal(8192, d));

        var family = panel.FindComponents<MudSelect<ShapeFamily>>().Single();
        await cut.InvokeAsync(() => family.Instance.ValueChanged.InvokeAsync(ShapeFamily.FixedAspect));
        var widths = Widths();
        Assert.True(widths.Distinct().Count() > 3);
        Assert.Equal(widths.OrderDescending(), widths); // deeper rows are narrower
    }
}
