using Explorer.Core.Accounting;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Spectre.Console;

namespace Explorer.Cli;

/// <summary>The human-readable form of <c>explorer specs</c>.</summary>
public static class SpecsTable
{
    public static void Write(ArchitectureReport r, TextWriter writer)
    {
        var console = CliOutput.Console(writer, 110);

        var s = r.Spec;
        var p = r.Parameters;
        var table = new Table().Border(TableBorder.Simple).Title($"{s.Name} at sequence length {r.SequenceLength:N0}");
        table.AddColumn("quantity").AddColumn(new TableColumn("exact").RightAligned()).AddColumn("readable");

        void Section(string name) => table.AddRow($"[bold]{Markup.Escape(name)}[/]", "", "");
        void Row(string name, long exact, string readable) =>
            table.AddRow(Markup.Escape(name), Units.Exact(exact), Markup.Escape(readable));
        void Note(string name, string value) => table.AddRow(Markup.Escape(name), Markup.Escape(value), "");

        Section("shape");
        Note("family", $"{DesignSummary.FamilyName(s.Family)} ({s.ArchitectureClass})");
        Note("design", DesignSummary.Features(s));
        Note("layers", s.Layers.ToString());
        Note("hidden / FFN", $"{s.HiddenSize} / {s.IntermediateSize}");
        Note("heads / KV heads", $"{s.AttentionHeads} / {s.KeyValueHeads} ({s.AttentionKind}, head_dim {s.HeadDim})");
        Note("vocabulary / context", $"{s.VocabularySize} / {s.ContextLength}");

        Section("parameters");
        Row("embedding", p.Embedding, Units.Count(p.Embedding));
        Row("per layer", p.PerLayer.Total, Units.Count(p.PerLayer.Total));
        Row(
            "  attention q, k, v, o",
            p.PerLayer.Attention,
            $"{Units.Count(p.PerLayer.Query)}, {Units.Count(p.PerLayer.Key)}, "
                + $"{Units.Count(p.PerLayer.Value)}, {Units.Count(p.PerLayer.Output)}"
        );
        Row(
            "  FFN gate, up, down",
            p.PerLayer.Ffn,
            $"{Units.Count(p.PerLayer.Gate)}, {Units.Count(p.PerLayer.Up)}, {Units.Count(p.PerLayer.Down)}"
        );
        Row("  norms", p.PerLayer.Norms, Units.Count(p.PerLayer.Norms));
        if (p.PerLayer.Biases > 0)
            Row("  biases", p.PerLayer.Biases, Units.Count(p.PerLayer.Biases));
        Row($"all {s.Layers} layers", p.AllLayers, Units.Count(p.AllLayers));
        Row("final norm", p.FinalNorm, Units.Count(p.FinalNorm));
        Row("LM head", p.LmHead, Units.Count(p.LmHead));
        Row("total", p.Total, Units.Count(p.Total));

        Section("compute per token");
        Row("forward FLOPs (causal)", r.Flops.ForwardPerToken, Units.Flops(r.Flops.ForwardPerToken));
        Row("training FLOPs (3× forward)", r.Flops.TrainingPerToken, Units.Flops(r.Flops.TrainingPerToken));
        Row("DeepSeek M = 72·n·d² + 12·n·d·l", r.DeepSeekM, Units.Flops(r.DeepSeekM));
        Row(
            "exact M (same conventions)",
            r.ExactM,
            $"{Units.Flops(r.ExactM)}; M is {Units.Percent(r.DeepSeekMError)} off"
        );

        Section("memory");
        Row("KV cache per token (bf16)", r.KvCacheBytesPerToken, Units.Bytes(r.KvCacheBytesPerToken));
        Row(
            $"KV cache per sequence of {r.SequenceLength}",
            r.KvCacheBytesPerSequence,
            Units.Bytes(r.KvCacheBytesPerSequence)
        );
        foreach (var (dtype, bytes) in r.WeightBytes)
            Row($"weights ({dtype})", bytes, Units.Bytes(bytes));
        Row("training state (Adam, 16 B/param)", r.TrainingStateBytes, Units.Bytes(r.TrainingStateBytes));
        Row(
            "activations / layer / sequence, none",
            r.ActivationsPerLayer.None,
            Units.Bytes(r.ActivationsPerLayer.None)
        );
        Row("  selective recomputation", r.ActivationsPerLayer.Selective, Units.Bytes(r.ActivationsPerLayer.Selective));
        Row("  full recomputation", r.ActivationsPerLayer.Full, Units.Bytes(r.ActivationsPerLayer.Full));

        Section("in layer equivalents");
        Note("embedding (parameters)", Units.Ratio(r.LayerEquivalents.EmbeddingByParameters));
        Note("LM head (parameters)", Units.Ratio(r.LayerEquivalents.HeadByParameters));
        Note("LM head (FLOPs)", Units.Ratio(r.LayerEquivalents.HeadByFlops));
        var head = (int)Math.Round(r.LayerEquivalents.HeadByParameters);
        Note(
            "layers per stage, p = 2/4/8/16",
            string.Join(" / ", EvenSplit.CommonStageCounts.Select(n => new EvenSplit(s.Layers, n)))
        );
        Note(
            $"  counting the head as {head}",
            string.Join(" / ", EvenSplit.CommonStageCounts.Select(n => new EvenSplit(s.Layers + head, n)))
        );

        console.Write(table);
    }
}
