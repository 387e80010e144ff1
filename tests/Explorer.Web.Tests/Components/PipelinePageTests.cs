using Bunit;
using Explorer.Core.Parallel;
using Explorer.Core.Pipeline;
using Explorer.Core.Specs;
using Explorer.Web.Components.Pages.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;

namespace Explorer.Web.Tests;

public sealed class PipelinePageTests : BunitTest, IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("explorer-pipeline-page-");
    private Explorer.Model.Hosting.ModelHost? _host;

    private IRenderedComponent<Pipeline> RenderPage(bool liveModels = false, string? uri = null)
    {
        _host = new Explorer.Model.Hosting.ModelHost(
            new Explorer.Model.Hosting.ModelHostOptions { ModelsFolder = _root.FullName, Device = "cpu" }
        );
        if (liveModels)
            _host.LoadDefaultModelsAsync().GetAwaiter().GetResult();
        Context.Services.AddSingleton(_host);
        if (uri is not null)
            Context.Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>().NavigateTo(uri);
        Context.Render<MudPopoverProvider>();
        return Context.Render<Pipeline>();
    }

    public void Dispose()
    {
        _host?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _root.Delete(true);
    }

    [Fact]
    public async Task MeasuredCostsComeFromTheLiveModel()
    {
        var cut = RenderPage(liveModels: true);
        var select = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Model");
        await cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("deepseek-7b-mini"));
        var analytic = cut.Find("[data-testid=plan-a-stages]").TextContent;
        var basis = cut.FindComponents<MudSelect<CostBasis>>().Single();
        Assert.Equal("Configuration", Basis(cut)); // a model opens on its searched configuration
        await cut.InvokeAsync(() => basis.Instance.ValueChanged.InvokeAsync(CostBasis.Measured));
        await cut.WaitForAssertionAsync(
            () => Assert.NotEqual(analytic, cut.Find("[data-testid=plan-a-stages]").TextContent),
            TimeSpan.FromSeconds(60)
        );
        Assert.Equal(33, cut.FindAll("[data-testid=plan-a-strip] rect.unit").Count);
        Assert.Empty(cut.FindAll("[data-testid=measured-for]"));
        // Timed for the page's stage count (each stage thread's share of the cores): another count says so.
        var timedFor = StageRows(cut);
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(timedFor + 1));
        Assert.Contains($"Timed for {timedFor} stage threads", cut.Find("[data-testid=measured-for]").TextContent);
        Assert.Equal("Measured", Basis(cut));
    }

    [Fact]
    public async Task TheCostBasisIsAChoiceOnThePage()
    {
        // The 67B opens on its searched configuration; the shape's costs and back are one choice each.
        var cut = RenderPage();
        var basis = cut.FindComponents<MudSelect<CostBasis>>().Single();
        Assert.Equal("Configuration", Basis(cut));
        var configured = cut.Find("[data-testid=plan-a-stages]").TextContent;
        await cut.InvokeAsync(() => basis.Instance.ValueChanged.InvokeAsync(CostBasis.Analytic));
        Assert.Equal("Analytic", Basis(cut));
        var analytic = cut.Find("[data-testid=plan-a-stages]").TextContent;
        Assert.NotEqual(configured, analytic);
        await cut.InvokeAsync(() =>
            cut.FindComponents<MudSelect<CostBasis>>()
                .Single()
                .Instance.ValueChanged.InvokeAsync(CostBasis.Configuration)
        );
        Assert.Equal(configured, cut.Find("[data-testid=plan-a-stages]").TextContent);
    }

    private static string? Basis(IRenderedComponent<Pipeline> cut) =>
        cut.Find("[data-testid=cost-basis]").GetAttribute("data-basis");

    private static int StageRows(IRenderedComponent<Pipeline> cut, string plan = "plan-a") =>
        cut.FindAll($"[data-testid={plan}-stages] tbody tr").Count;

    [Fact]
    public async Task APlanRunsForRealOnTheLiveModel()
    {
        var cut = RenderPage(liveModels: true);
        var select = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Model");
        await cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("deepseek-7b-mini"));
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(2));
        var micro = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Micro-batches m");
        await cut.InvokeAsync(() => micro.Instance.ValueChanged.InvokeAsync(2));
        var seq = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Sequence");
        await cut.InvokeAsync(() => seq.Instance.ValueChanged.InvokeAsync(32));
        cut.Find("[data-testid=run-for-real]").Click();
        await cut.WaitForAssertionAsync(
            () => Assert.Contains("the simulator is off by", cut.Find("[data-testid=simulator-error]").TextContent),
            TimeSpan.FromSeconds(60)
        );
        Assert.NotNull(
            cut.FindComponents<Explorer.Web.Components.Charts.GanttChart>()
                .SingleOrDefault(g => g.Instance.Id == "gantt-measured")
        );
    }

    /// <summary>What the page opens on: the fastest configuration of the 67B that fits 64 H200s at 256 sequences of
    /// 4,096 tokens, among the schedules the engines run.</summary>
    private static ParallelEstimate DefaultChoice() =>
        ParallelSearch
            .Search(ModelPresets.DeepSeekLlm67B, 4096, Cluster.Node8(Gpu.H200), 64, 256)
            .Fitting.First(e => e.Config.Schedule is ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B);

    [Fact]
    public void The67BOpensOnAConfigurationThatFitsAndPlansItsPipeline()
    {
        var cut = RenderPage();
        var best = DefaultChoice().Config;
        Assert.Contains("planned below", cut.Find("[data-testid=parallel-row-0]").TextContent);
        Assert.Contains(best.Describe(), cut.Find("[data-testid=parallel-chosen]").TextContent);
        Assert.Equal(best.Pipeline * best.VirtualStages, StageRows(cut));
        // Every unit of the 67B (embedding, 95 layers, head, loss) is drawn once in plan A's strip.
        Assert.Equal(98, cut.FindAll("[data-testid=plan-a-strip] rect.unit").Count);
        Assert.Equal(
            best.Pipeline * best.VirtualStages - 1,
            cut.FindAll("[data-testid=plan-a-strip] g.boundary").Count
        );
        // Costed per GPU of the t-way group with the ZeRO stage, the devices fit (no chip warns of the budget).
        Assert.Empty(cut.FindAll("[data-testid=plan-a-figures] .mud-chip-color-warning"));
        Assert.Contains(
            $"--tensor-model-parallel-size {best.Tensor} --pipeline-model-parallel-size {best.Pipeline}",
            cut.Find("[data-testid=export-text]").TextContent
        );
        Assert.Contains($"--global-batch-size 256", cut.Find("[data-testid=export-text]").TextContent);
    }

    private static int[] FirstUnits(IRenderedComponent<Pipeline> cut) =>
        cut.FindComponents<PlanSummary>()
            .First(p => p.Instance.TestId == "plan-a")
            .Instance.Outcome!.Report!.Plan.Stages.Select(s => s.FirstUnit)
            .ToArray();

    [Fact]
    public void ALinkOpensExactlyTheSplitItNames()
    {
        var cut = RenderPage(
            uri: "pipeline?model=deepseek-7b-mini&stages=4&schedule=gpipe&microbatches=6&seq=20&mbs=2"
                + "&method=manual&boundaries=3,12,20"
        );
        Assert.Equal([0, 3, 12, 20], FirstUnits(cut));
        var report = cut.FindComponents<PlanSummary>()
            .First(p => p.Instance.TestId == "plan-a")
            .Instance.Outcome!.Report!;
        Assert.Equal(
            (ScheduleKind.GPipe, 6, 40L),
            (report.Request.Schedule, report.Request.MicroBatches, report.Request.TokensPerMicroBatch)
        );
        Assert.Equal(MiniPresets.DeepSeek7BMini.Layers + 3, report.Request.Units.Count);
        Assert.Empty(cut.FindAll("[data-testid=url-notes]"));
        // pipeline only
        Assert.StartsWith("No configuration chosen", cut.Find("[data-testid=parallel-chosen]").TextContent.Trim());
    }

    [Fact]
    public void UnusableLinkValuesAreLeftOutWithANote()
    {
        var cut = RenderPage(
            uri: "pipeline?model=deepseek-7b-mini&stages=abc&schedule=pipedream&boundaries=9,3&seq=999999"
        );
        var notes = cut.Find("[data-testid=url-notes]").TextContent;
        Assert.Contains("stages=abc was left out: a whole number from 1 to 33", notes);
        Assert.Contains("schedule=pipedream was left out", notes);
        Assert.Contains("seq=999999 was left out: a whole number from 2 to 1,024", notes);
        Assert.Contains("boundaries=9,3 was left out", notes);
        Assert.Equal(new PipelineSettings().Stages, StageRows(cut)); // the page's own stage count stands
    }

    [Fact]
    public async Task AnEditedPlanIsInTheUrlAndAReloadKeepsIt()
    {
        var cut = RenderPage();
        var navigation = Context.Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>();
        Assert.DoesNotContain("stages=", navigation.Uri); // a searched configuration: only the model
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(6));
        var method = cut.FindComponents<MudSelect<PartitionMethod>>().Single(f => f.Instance.Label == "Partition");
        await cut.InvokeAsync(() => method.Instance.ValueChanged.InvokeAsync(PartitionMethod.Manual));
        var edited = FirstUnits(cut);
        Assert.Contains("stages=6", navigation.Uri);
        Assert.Contains($"boundaries={Uri.EscapeDataString(string.Join(",", edited.Skip(1)))}", navigation.Uri);

        // The same URL in a new page: the same split.
        var reloaded = Context.Render<Pipeline>();
        Assert.Equal(edited, FirstUnits(reloaded));
    }

    [Fact]
    public async Task TheChosenConfigurationsCommunicationIsDrawnOnItsGantt()
    {
        var cut = RenderPage();
        IEnumerable<string> Traces() =>
            cut.FindComponents<Explorer.Web.Components.Charts.ChartFrame>()
                .Single(f => f.Instance.Id == "gantt-a")
                .Instance.Data.OfType<Plotly.Blazor.Traces.Bar>()
                .Select(b => b.Name);
        Assert.Contains("tensor-parallel collectives (their share of each op)", Traces());
        Assert.Contains("data-parallel gradient reduce-scatter (ZeRO)", Traces());
        // A hand edit leaves the configuration: one device per stage, no tensor or data parallelism to draw.
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(3));
        Assert.DoesNotContain(Traces(), name => name.Contains("parallel"));
    }

    [Fact]
    public async Task AnotherRowReplansAndAHandEditLeavesTheConfiguration()
    {
        var cut = RenderPage();
        var third = ParallelSearch
            .Search(ModelPresets.DeepSeekLlm67B, 4096, Cluster.Node8(Gpu.H200), 64, 256)
            .Fitting.Where(e => e.Config.Schedule is ScheduleKind.OneFOneB or ScheduleKind.Interleaved1F1B)
            .ElementAt(2)
            .Config;
        cut.Find("[data-testid=parallel-use-2] button, button[data-testid=parallel-use-2]").Click();
        Assert.Contains(third.Describe(), cut.Find("[data-testid=parallel-chosen]").TextContent);
        Assert.Equal(third.Pipeline * third.VirtualStages, StageRows(cut));
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(5));
        Assert.Contains("No configuration chosen", cut.Find("[data-testid=parallel-chosen]").TextContent);
        Assert.Equal(5, StageRows(cut));
    }

    [Fact]
    public async Task TooFewGpusSayWhyNothingFits()
    {
        var cut = RenderPage();
        var gpus = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "GPUs");
        await cut.InvokeAsync(() => gpus.Instance.ValueChanged.InvokeAsync(1));
        Assert.Contains(
            "No configuration of deepseek-llm-67b fits 1 × 141 GB",
            cut.Find("[data-testid=parallel-problem]").TextContent
        );
        Assert.Contains("No configuration chosen", cut.Find("[data-testid=parallel-chosen]").TextContent);
    }

    [Fact]
    public async Task ChoosingAnotherModelReplansIt()
    {
        var cut = RenderPage();
        var select = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Model");
        await cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync("deepseek-llm-7b"));
        Assert.Equal(33, cut.FindAll("[data-testid=plan-a-strip] rect.unit").Count); // embedding, 30 layers, head, loss
    }

    [Fact]
    public async Task ChangingStagesReplans()
    {
        var cut = RenderPage();
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(6));
        Assert.Equal(6, StageRows(cut));
    }

    [Fact]
    public async Task MovingABoundaryMakesThePlanManualAndChangesTheStages()
    {
        var cut = RenderPage();
        var before = cut.FindAll("[data-testid=plan-a-stages] tbody tr")[0].TextContent;
        var strip = cut.FindComponents<StageStrip>().First(s => s.Instance.TestId == "plan-a-strip");
        var first = strip.Instance.Plan.Boundaries[0];
        await cut.InvokeAsync(() => strip.Instance.MoveTo(0, first + 3));
        Assert.Contains("manual", cut.Find("[data-testid=plan-a] h2").TextContent);
        var after = cut.FindAll("[data-testid=plan-a-stages] tbody tr")[0].TextContent;
        Assert.NotEqual(before, after);
        Assert.Equal(
            first + 3 + 0,
            cut.FindComponents<StageStrip>().First(s => s.Instance.TestId == "plan-a-strip").Instance.Plan.Boundaries[0]
        );
        // A boundary cannot pass its neighbour: every stage keeps a unit.
        var moved = cut.FindComponents<StageStrip>().First(s => s.Instance.TestId == "plan-a-strip");
        await cut.InvokeAsync(() => moved.Instance.MoveTo(0, 10_000));
        Assert.Equal(
            moved.Instance.Plan.Boundaries[1] - 1,
            cut.FindComponents<StageStrip>().First(s => s.Instance.TestId == "plan-a-strip").Instance.Plan.Boundaries[0]
        );
    }

    [Fact]
    public async Task BadInputIsExplainedOnThePage()
    {
        var cut = RenderPage();
        var micro = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Micro-batches m");
        await cut.InvokeAsync(() => micro.Instance.ValueChanged.InvokeAsync(0));
        Assert.Contains("micro-batches m = 0", cut.Find("[data-testid=plan-a-refusal]").TextContent);
        var seq = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Sequence");
        await cut.InvokeAsync(() => seq.Instance.ValueChanged.InvokeAsync(-5));
        Assert.Contains("sequence length -5", cut.Find("[data-testid=pipeline-problem]").TextContent);
    }

    [Fact]
    public async Task ExportRefusalSaysWhichRule()
    {
        var cut = RenderPage();
        var schedule = cut.FindComponents<MudSelect<ScheduleKind>>().First(f => f.Instance.Label == "Schedule");
        await cut.InvokeAsync(() => schedule.Instance.ValueChanged.InvokeAsync(ScheduleKind.ZeroBubbleH1));
        Assert.Contains("no Zero Bubble H1", cut.Find("[data-testid=export-refusal]").TextContent);
        cut.Find("[data-testid=export-json]").Click();
        Assert.Contains("\"schedule\": \"zb-h1\"", cut.Find("[data-testid=export-text]").TextContent);
    }

    [Fact]
    public async Task AVScheduleCutsTwoStagesPerDeviceAndTheTableNamesTheirDevices()
    {
        var cut = RenderPage();
        var stages = cut.FindComponents<MudNumericField<int>>().Single(f => f.Instance.Label == "Stages p");
        await cut.InvokeAsync(() => stages.Instance.ValueChanged.InvokeAsync(4));
        var schedule = cut.FindComponents<MudSelect<ScheduleKind>>().First(f => f.Instance.Label == "Schedule");
        await cut.InvokeAsync(() => schedule.Instance.ValueChanged.InvokeAsync(ScheduleKind.ZeroBubbleV));
        // 2p = 8 stages; device r runs stages r and 7 − r.
        Assert.Equal(8, StageRows(cut));
        var devices = cut.FindAll("[data-testid=plan-a-stages] tbody tr")
            .Select(r => r.QuerySelectorAll("td")[1].TextContent.Trim())
            .ToArray();
        Assert.Equal(["0", "1", "2", "3", "3", "2", "1", "0"], devices);
    }

    [Fact]
    public void AShareLinkCarriesThePanelsSearch()
    {
        // torchtitan's schedules on 128 GPUs with the gradient overlap, from the link; a bad engine would be noted.
        var cut = RenderPage(uri: "/pipeline?model=deepseek-llm-67b&engine=torchtitan&gpus=128&overlap=grad");
        Assert.Empty(cut.FindAll("[data-testid=url-notes]"));
        var table = cut.Find("[data-testid=parallel-table]").TextContent;
        Assert.Matches("zbv|interleaved-zb|dualpipev", table);
        Assert.Equal(
            "128",
            cut.Find("input[data-testid=parallel-gpus], [data-testid=parallel-gpus] input").GetAttribute("value")
        );
    }

    [Fact]
    public void APanelValueALinkCannotUseIsNoted()
    {
        var cut = RenderPage(uri: "/pipeline?engine=nvidia");
        Assert.Contains("engine=nvidia was left out", cut.Find("[data-testid=url-notes]").TextContent);
    }
}
