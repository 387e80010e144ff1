using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Tokenization;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Model.Hosting;

/// <summary>A decoder with its tokenizer, ready to run: a mini preset or a checkpoint from disk.</summary>
public sealed class LiveModel : IDisposable
{
    public LiveModel(
        string name,
        Explorer.Model.Decoder.Decoder decoder,
        ITextTokenizer? tokenizer,
        string source,
        IReadOnlyList<string>? configWarnings = null
    )
    {
        Name = name;
        Decoder = decoder;
        Tokenizer = tokenizer;
        Source = source;
        ConfigWarnings = configWarnings ?? [];
    }

    /// <summary>What reading config.json noticed and did not refuse: fields the family's class does not read,
    /// ignored.</summary>
    public IReadOnlyList<string> ConfigWarnings { get; }

    public string Name { get; }
    public Explorer.Model.Decoder.Decoder Decoder { get; }
    public ITextTokenizer? Tokenizer { get; }

    /// <summary>Where the weights came from: "seed 1234", "trained (defaults/NAME)" or a folder.</summary>
    public string Source { get; }
    public ModelSpec Spec => Decoder.Spec;

    /// <summary>
    /// A mini preset with the tokenizer that ships with the app: its trained weights when the build ships them and
    /// <paramref name="trained"/> is set, else initialised from <paramref name="seed"/>.
    /// </summary>
    public static LiveModel Mini(ModelSpec spec, ulong seed = 1234, string device = "cpu", bool trained = true)
    {
        if (trained && TrainedDefaults.Find(spec) is not null)
            return TrainedDefaults.Load(spec, device);
        var decoder = Explorer.Model.Decoder.Decoder.Create(
            spec,
            new DecoderOptions { Seed = seed, Device = TorchDevice.Resolve(device) }
        );
        return new LiveModel(spec.Name, decoder, MiniTokenizer.Create(), $"seed {seed}");
    }

    /// <summary>
    /// A Hugging Face checkpoint folder; its tokenizer.json is used when present. The tokenizer is read first, against
    /// the config's vocab_size, so a bad one is refused before gigabytes of weights are read.
    /// </summary>
    /// <param name="streamed">Run it layer by layer from its files (<see cref="Checkpoint.LoadStreamed"/>; CPU
    /// only).</param>
    public static LiveModel FromCheckpoint(
        string directory,
        string device = "cpu",
        ScalarType? dtype = null,
        IProgress<double>? progress = null,
        string? source = null,
        string? name = null,
        bool streamed = false,
        bool? mapLayers = null
    )
    {
        var (spec, warnings) = Checkpoint.ReadConfig(directory);
        var resolved = TorchDevice.Resolve(device);
        if (streamed && resolved.type != TorchSharp.DeviceType.CPU)
            throw new ArgumentException($"Streaming runs on the CPU; device '{device}' resolves to {resolved.type}.");
        var tokenizer = ReadTokenizer(directory, spec);
        try
        {
            var decoder = streamed
                ? Checkpoint.LoadStreamed(directory, dtype, progress, mapLayers)
                : Checkpoint.Load(directory, dtype, resolved, progress);
            return new LiveModel(
                name ?? new DirectoryInfo(directory).Name,
                decoder,
                tokenizer,
                source ?? directory,
                warnings
            );
        }
        catch
        {
            tokenizer?.Dispose();
            throw;
        }
    }

    private static ITextTokenizer? ReadTokenizer(string directory, ModelSpec spec)
    {
        var tokenizerPath = Path.Combine(directory, HfTokenizer.FileName);
        if (File.Exists(tokenizerPath))
        {
            try
            {
                return HfTokenizer.Load(tokenizerPath, spec.VocabularySize);
            }
            catch (ArgumentException e)
            {
                throw new CheckpointException(ProblemText.Readable(e));
            }
        }
        var marker = Path.Combine(directory, MiniTokenizer.MarkerFile);
        if (
            File.Exists(marker)
            && new FileInfo(marker).Length < 1024
            && File.ReadAllText(marker).Trim() == MiniTokenizer.MarkerText
        )
        {
            if (spec.VocabularySize < MiniPresets.Vocabulary)
                throw new CheckpointException(
                    $"{marker} names the {MiniTokenizer.MarkerText} tokenizer "
                        + $"({MiniPresets.Vocabulary:N0} tokens) but the model's vocab_size is "
                        + $"{spec.VocabularySize:N0}."
                );
            return MiniTokenizer.Create();
        }
        return null;
    }

    /// <summary>Token ids of a prompt, checked against the model's vocabulary and the length limit.</summary>
    public int[] Encode(string prompt, int maxTokens)
    {
        if (Tokenizer is null)
            throw new InvalidOperationException($"{Name} has no tokenizer.json: give token ids instead of text.");
        var ids = Tokenizer.Encode(prompt).ToArray();
        CheckTokens(ids, maxTokens);
        return ids;
    }

    public void CheckTokens(IReadOnlyList<int> ids, int maxTokens)
    {
        if (ids.Count == 0)
            throw new ArgumentException("The prompt is empty: give at least one token.");
        var limit = Math.Min(maxTokens, Spec.ContextLength);
        if (ids.Count > limit)
            throw new ArgumentException($"The prompt is {ids.Count:N0} tokens; {Name} takes at most {limit:N0} here.");
        foreach (var id in ids)
            if (id < 0 || id >= Spec.VocabularySize)
                throw new ArgumentException(
                    $"Token id {id} is outside {Name}'s vocabulary [0, {Spec.VocabularySize:N0})."
                );
    }

    /// <summary>Tokens in the warm-up forward: enough for every kernel a prompt's forward and lens use.</summary>
    public const int WarmUpTokens = 8;

    /// <summary>
    /// Runs one short traced forward and its lens at every position, and drops them, so that what a process pays once
    /// (first-touch of the working memory, kernel selection, JIT of the trace code) is not paid by the first prompt.
    /// </summary>
    public void WarmUp()
    {
        var ids = Enumerable
            .Range(0, Math.Min(WarmUpTokens, Spec.ContextLength))
            .Select(i => i % Spec.VocabularySize)
            .ToArray();
        using var input = ToTensor(ids);
        using var trace = Decoder.Trace(input, TraceOptions.ForViews(ids.Length, attention: false));
        trace.CompleteLens(Decoder);
    }

    /// <summary>Token ids as a (1, T) int64 tensor (the flat one held until the view is made, not left to a
    /// finalizer).</summary>
    public static Tensor ToTensor(IReadOnlyList<int> ids)
    {
        using var flat = TorchSharp.torch.tensor(ids.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64);
        return flat.unsqueeze(0);
    }

    public void Dispose()
    {
        Decoder.Dispose();
        Tokenizer?.Dispose();
    }
}
