using Explorer.Core.Specs;

namespace Explorer.Web.Components.Pages.Architecture;

/// <summary>The editable form of a spec: fields the editor binds to, turned back into a spec on each change.</summary>
public sealed class SpecDraft
{
    public string Name { get; set; } = "custom";
    public int Layers { get; set; }
    public int HiddenSize { get; set; }
    public int IntermediateSize { get; set; }
    public int AttentionHeads { get; set; }
    public int KeyValueHeads { get; set; }
    public int VocabularySize { get; set; }
    public int ContextLength { get; set; }
    public bool TiedEmbeddings { get; set; }
    public NormPlacement NormPlacement { get; set; }
    public FfnKind FfnKind { get; set; }

    public static SpecDraft From(ModelSpec s) =>
        new()
        {
            Name = s.Name,
            Layers = s.Layers,
            HiddenSize = s.HiddenSize,
            IntermediateSize = s.IntermediateSize,
            AttentionHeads = s.AttentionHeads,
            KeyValueHeads = s.KeyValueHeads,
            VocabularySize = s.VocabularySize,
            ContextLength = s.ContextLength,
            TiedEmbeddings = s.TiedEmbeddings,
            NormPlacement = s.NormPlacement,
            FfnKind = s.FfnKind,
        };

    /// <summary>The spec these fields describe, keeping the base's RoPE and norm settings.</summary>
    public ModelSpec ToSpec(ModelSpec basis) =>
        basis with
        {
            Name = Name,
            Layers = Layers,
            HiddenSize = HiddenSize,
            IntermediateSize = IntermediateSize,
            AttentionHeads = AttentionHeads,
            KeyValueHeads = KeyValueHeads,
            VocabularySize = VocabularySize,
            ContextLength = ContextLength,
            TiedEmbeddings = TiedEmbeddings,
            NormPlacement = NormPlacement,
            FfnKind = FfnKind,
        };
}
