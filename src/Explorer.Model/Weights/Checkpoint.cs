using System.Text.Json;
using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using TorchSharp;
using static TorchSharp.torch;

namespace Explorer.Model.Weights;

/// <summary>
/// A Hugging Face LLaMA-layout checkpoint folder: <c>config.json</c> plus <c>model.safetensors</c>, or shards
/// <c>model-0000N-of-0000M.safetensors</c> listed in <c>model.safetensors.index.json</c>.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json";
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    // Buffers some exporters include; they are recomputed, not loaded.
    private static bool IsIgnorable(string name) => name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>Reads config.json into a spec, or throws naming every problem.</summary>
    public static ModelSpec ReadSpec(string directory) => ReadConfig(directory).Spec;

    /// <summary>Reads config.json into a spec and what the reader noticed but did not refuse (fields ignored), or
    /// throws naming every problem.</summary>
    public static (ModelSpec Spec, IReadOnlyList<string> Warnings) ReadConfig(string directory)
    {
        var path = Path.Combine(directory, ConfigFile);
        if (!File.Exists(path))
            throw new CheckpointException($"{directory} has no {ConfigFile}.");
        var result = HfConfigReader.ReadFile(path);
        if (!result.Succeeded)
            throw new CheckpointException($"{path} cannot be used:", result.Errors.Select(e => e.ToString()).ToArray());
        var name = new DirectoryInfo(directory).Name;
        return (
            result.Spec! with
            {
                Name = string.IsNullOrWhiteSpace(name) ? result.Spec.Name : name,
            },
            result.Warnings
        );
    }

    /// <summary>The safetensors files of a checkpoint and which file holds each tensor, validated.</summary>
    public static IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> OpenTensors(
        string directory
    )
    {
        var index = Path.Combine(directory, IndexFile);
        var single = Path.Combine(directory, SingleFile);
        var problems = new List<string>();
        var tensors = new Dictionary<string, (SafetensorsFile, SafetensorsEntry)>();
        if (File.Exists(index))
        {
            var weightMap = ReadWeightMap(index);
            var files = new Dictionary<string, SafetensorsFile>();
            foreach (var shard in weightMap.Values.Distinct())
                files[shard] = SafetensorsFile.Open(Path.Combine(directory, shard));
            foreach (var (name, shard) in weightMap)
            {
                if (files[shard].Entries.TryGetValue(name, out var entry))
                    tensors[name] = (files[shard], entry);
                else
                    problems.Add($"{name}: the index places it in {shard}, which does not hold it.");
            }
            foreach (var (shard, file) in files)
            foreach (var name in file.Entries.Keys.Where(n => !weightMap.ContainsKey(n)))
                problems.Add($"{name}: in {shard} but not in {IndexFile}.");
        }
        else if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            foreach (var (name, entry) in file.Entries)
                tensors[name] = (file, entry);
        }
        else
            throw new CheckpointException($"{directory} has neither {SingleFile} nor {IndexFile}.");
        if (problems.Count > 0)
            throw new CheckpointException($"The shards of {directory} do not match their index:", problems);
        return tensors;
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{IndexFile} has no weight_map object.");
            var result = new Dictionary<string, string>();
            var problems = new List<string>();
            foreach (var entry in map.EnumerateObject())
            {
                var file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : "";
                // Shards live beside the index: a plain file name, never a path out of the folder.
                if (
                    file.Length == 0
                    || file != Path.GetFileName(file)
                    || file is "." or ".."
                    || !file.EndsWith(".safetensors", StringComparison.Ordinal)
                )
                    problems.Add(
                        $"{entry.Name}: shard '{entry.Value.GetRawText()}' must be a .safetensors file "
                            + "name in the checkpoint folder."
                    );
                else
                    result[entry.Name] = file;
            }
            if (problems.Count > 0)
                throw new CheckpointException($"{IndexFile} is not valid:", problems);
            return result;
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{IndexFile} is not valid JSON ({e.Message.Split(" Path:")[0]}).");
        }
    }

    /// <summary>
    /// Loads a checkpoint folder into a new decoder. Where a tensor's dtype in the file is the one asked for, its
    /// parameter is a view of the file mapped into memory (copy-on-write, <see cref="MappedFile"/>): nothing is copied,
    /// the page cache is the only copy of the weights, and a model as large as most of the machine's memory loads at
    /// the speed the files read. Other dtypes are read and converted in chunks. Either way no parameter is initialised
    /// first, missing, unexpected and mis-shaped tensors are all listed before anything is allocated, and NaN or Inf in
    /// any weight is refused, naming each tensor and how many values.
    /// </summary>
    public static Decoder.Decoder Load(
        string directory,
        ScalarType? dtype = null,
        Device? device = null,
        IProgress<double>? progress = null,
        bool mapFiles = true
    )
    {
        var spec = ReadSpec(directory);
        var tensors = OpenTensors(directory);
        var target = dtype ?? DefaultType(tensors);
        CheckMemory(directory, spec, target);
        CheckNames(directory, spec, tensors);
        var decoder = Decoder.Decoder.Create(
            spec,
            new DecoderOptions
            {
                Initialise = false,
                DType = target,
                Device = CPU,
            }
        );
        try
        {
            Fill(directory, decoder, tensors, progress, mapFiles);
            if (device is not null && device.type != DeviceType.CPU)
                decoder.to(device);
            return decoder;
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a checkpoint to run streamed (<see cref="LayerStream"/>): its embedding, final norm and LM head are read
    /// into memory, its layers are read from the files as each forward reaches them, two in memory
    /// at a time, mapped or read into memory (<paramref name="mapLayers"/>; when null, as <see cref="MapsLayers"/>
    /// says; see <see cref="LayerStream"/>).
    /// Names and shapes of every tensor are checked first, as for a resident load; a model whose streamed footprint
    /// does not fit is refused before anything is allocated. CPU only.
    /// </summary>
    public static Decoder.Decoder LoadStreamed(
        string directory,
        ScalarType? dtype = null,
        IProgress<double>? progress = null,
        bool? mapLayers = null
    ) => LoadStreamed(directory, dtype, progress, mapLayers, releasePages: null);

    /// <param name="releasePages">Whether mapped layers leave the process after use; null: when the page cache cannot
    /// hold them all.</param>
    internal static Decoder.Decoder LoadStreamed(
        string directory,
        ScalarType? dtype,
        IProgress<double>? progress,
        bool? mapLayers,
        bool? releasePages
    )
    {
        var spec = ReadSpec(directory);
        var tensors = OpenTensors(directory);
        var target = dtype ?? DefaultType(tensors);
        CheckNames(directory, spec, tensors);
        var needed = StreamedBytes(spec, target);
        var available = AvailableMemoryBytes();
        if (needed > available)
            throw new CheckpointException(
                $"{directory}: streamed, its {spec.Layers}-layer model still needs "
                    + $"{needed / (double)(1L << 30):0.0} GiB in {target} "
                    + $"(embedding, LM head and two layers) but only {available / (double)(1L << 30):0.0} "
                    + "GiB of memory are available."
            );
        var cached = MapsLayers(LayerFileBytes(tensors), needed, available);
        var map = mapLayers ?? cached;
        var decoder = Decoder.Decoder.Streamed(spec, target, () =>
            new LayerStream(spec, tensors, target, map, releasePages ?? !cached)
        );
        try
        {
            // Read, not mapped: a streamed checkpoint's files are read again on every forward, and one truncated or
            // rewritten meanwhile must fail that forward with a message, never fault a mapped embedding.
            Fill(directory, decoder, tensors, progress, mapFiles: false);
            return decoder;
        }
        catch
        {
            decoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Whether a streamed model's layers are mapped (views of the files) or read into buffers of its own, when not
    /// asked: mapped when the page cache can hold every layer beside the streamed weights and 1 GiB, read otherwise.
    /// Cached, a forward is bound by compute, and mapping saves the copies that would take CPU from it. Not cached, it
    /// is bound by the disk, the copies cost nothing the disk does not, and a buffer of its own cannot lose its pages
    /// to the kernel's reclaim before the forward reads them, as a mapped layer under that pressure can. The
    /// measurements behind both choices are in docs/streaming.md.
    /// </summary>
    public static bool MapsLayers(long layerFileBytes, long streamedBytes, long availableBytes) =>
        layerFileBytes + streamedBytes + (1L << 30) <= availableBytes;

    /// <summary>Bytes of a checkpoint's files that are its decoder layers (what a streamed forward reads).</summary>
    public static long LayerFileBytes(
        IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors
    ) =>
        tensors
            .Where(t => t.Key.StartsWith("model.layers.", StringComparison.Ordinal))
            .Sum(t => t.Value.Entry.End - t.Value.Entry.Begin);

    /// <summary>The dtype a checkpoint loads in unless asked otherwise: fp32 when every tensor is, else bf16.</summary>
    public static ScalarType DefaultType(
        IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors
    ) => tensors.Values.All(t => t.Entry.DType == "F32") ? ScalarType.Float32 : ScalarType.BFloat16;

    /// <summary>What a checkpoint folder would take in memory, resident and streamed, read from its headers
    /// only.</summary>
    public static (ModelSpec Spec, ScalarType DType, long ResidentBytes, long StreamedBytes) Footprint(string directory)
    {
        var spec = ReadSpec(directory);
        var dtype = DefaultType(OpenTensors(directory));
        return (spec, dtype, ResidentBytes(spec, dtype), StreamedBytes(spec, dtype));
    }

    /// <summary>Bytes a model's weights take in memory in <paramref name="dtype"/>, all resident.</summary>
    public static long ResidentBytes(ModelSpec spec, ScalarType dtype) =>
        Core.Accounting.ParameterBreakdown.Of(spec).Total
        * SafetensorsFile.ElementSizes[SafetensorsFile.FromScalarType(dtype)];

    /// <summary>Bytes a streamed model's weights take in memory: embedding, final norm, LM head and two
    /// layers.</summary>
    public static long StreamedBytes(ModelSpec spec, ScalarType dtype)
    {
        var p = Core.Accounting.ParameterBreakdown.Of(spec);
        return (p.Total - p.AllLayers + Math.Min(2, spec.Layers) * p.PerLayer.Total)
            * SafetensorsFile.ElementSizes[SafetensorsFile.FromScalarType(dtype)];
    }

    /// <summary>
    /// Reads every parameter the decoder holds from the checkpoint: a view of the mapped file where the dtype matches
    /// (nothing copied), read and converted otherwise; NaN and Inf refused, naming each tensor.
    /// </summary>
    private static void Fill(
        string directory,
        Decoder.Decoder decoder,
        IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors,
        IProgress<double>? progress,
        bool mapFiles
    )
    {
        var parameters = decoder.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var noGrad = torch.no_grad();
        long totalBytes = parameters.Keys.Sum(n => tensors[n].Entry.End - tensors[n].Entry.Begin),
            loaded = 0;
        void Advance(long bytes)
        {
            loaded += bytes;
            progress?.Report(totalBytes == 0 ? 1 : (double)loaded / totalBytes);
        }
        var nonFinite = new List<string>();
        foreach (var group in parameters.GroupBy(p => tensors[p.Key].File.Path))
        {
            using var stream = new FileStream(group.Key, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var mapped = new MappedFile(group.Key, stream.Length);
            foreach (var (name, parameter) in group)
            {
                var (file, entry) = tensors[name];
                var found =
                    mapFiles && mapped.TryView(file, entry, parameter.dtype) is { } view
                        ? Attach(parameter, view, entry, Advance)
                        : file.ReadInto(entry, parameter, stream, Advance);
                if (found.Total > 0)
                    nonFinite.Add(
                        $"{name} in {Path.GetFileName(file.Path)}: {found.NaN:N0} NaN and "
                            + $"{found.Infinite:N0} infinite of {entry.Elements:N0} values."
                    );
            }
        }
        // Refused rather than flagged: one NaN in a projection spreads through attention to every later
        // position and layer, and the charts would draw numbers that mean nothing.
        if (nonFinite.Count > 0)
            throw new CheckpointException($"{directory} has weights that are not finite numbers:", nonFinite);
    }

    /// <summary>Makes the parameter a view of the mapped file, scanning it for NaN and Inf as its pages come
    /// in.</summary>
    private static NonFiniteCount Attach(Tensor parameter, Tensor view, SafetensorsEntry entry, Action<long> advance)
    {
        using (view)
        {
            var found = MappedFile.PopulateAndScan(view, entry.End - entry.Begin, entry.DType);
            advance(entry.End - entry.Begin);
            parameter.set_(view);
            return found;
        }
    }

    /// <summary>Every parameter present with its shape, nothing unexpected: checked on a shapes-only (meta)
    /// decoder.</summary>
    private static void CheckNames(
        string directory,
        ModelSpec spec,
        IReadOnlyDictionary<string, (SafetensorsFile File, SafetensorsEntry Entry)> tensors
    )
    {
        using var shapes = Decoder.Decoder.Create(spec, new DecoderOptions { Device = META });
        var parameters = shapes.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        var problems = new List<string>();
        foreach (var (name, shape) in parameters)
        {
            if (!tensors.TryGetValue(name, out var found))
                problems.Add($"{name}: missing (expected shape [{string.Join(", ", shape)}]).");
            else if (!found.Entry.Shape.SequenceEqual(shape))
                problems.Add(
                    $"{name}: shape [{string.Join(", ", found.Entry.Shape)}] in "
                        + $"{Path.GetFileName(found.File.Path)}, expected [{string.Join(", ", shape)}]."
                );
        }
        foreach (var name in tensors.Keys.Where(n => !parameters.ContainsKey(n) && !IsIgnorable(n)))
            problems.Add($"{name}: unexpected (no such parameter in a {spec.Layers}-layer decoder).");
        if (problems.Count > 0)
            throw new CheckpointException($"{directory} does not fit its config.json:", problems);
    }

    /// <summary>
    /// Refuses, before allocating anything, a checkpoint whose weights in <paramref name="dtype"/> would not fit in the
    /// memory the system has available: running out of memory part-way would take the whole process down.
    /// </summary>
    public static void CheckMemory(string directory, ModelSpec spec, ScalarType dtype, long? availableBytes = null)
    {
        var needed = ResidentBytes(spec, dtype);
        var available = availableBytes ?? AvailableMemoryBytes();
        if (needed > available)
            throw new CheckpointException(
                $"{directory}: its {spec.Layers}-layer model needs {needed / (double)(1L << 30):0.0} "
                    + $"GiB in {dtype} but only "
                    + $"{available / (double)(1L << 30):0.0} GiB of memory are available; stream it (layer by layer, "
                    + $"{StreamedBytes(spec, dtype) / (double)(1L << 30):0.0} GiB) or free memory."
            );
    }

    /// <summary>Memory the system can give this process now: MemAvailable on Linux, else what the GC reports.</summary>
    public static long AvailableMemoryBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>
    /// Saves a decoder as a checkpoint folder in <paramref name="dtype"/> (default: its own). Above
    /// <paramref name="maxShardBytes"/> the weights are split into shards with an index. Each file is written
    /// to a temporary name and renamed, so an interrupted save never leaves a half-written file under a real name.
    /// </summary>
    public static void Save(
        Decoder.Decoder decoder,
        string directory,
        ScalarType? dtype = null,
        long maxShardBytes = long.MaxValue
    )
    {
        if (maxShardBytes < 1)
            throw new ArgumentOutOfRangeException(
                nameof(maxShardBytes),
                maxShardBytes,
                "Shards must hold at least one byte."
            );
        var type = dtype ?? decoder.DType;
        var torchName = type switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float16 => "float16",
            _ => "float32",
        };
        SafetensorsFile.FromScalarType(type); // refuses types safetensors checkpoints here do not use
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        var named = decoder.named_parameters().Select(p => (p.name, Tensor: p.parameter.detach().to(type))).ToList();

        var shards = new List<List<(string Name, Tensor Tensor)>> { new() };
        long current = 0;
        foreach (var item in named)
        {
            var bytes = item.Tensor.numel() * item.Tensor.element_size();
            if (current > 0 && current + bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(item);
            current += bytes;
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        foreach (var stale in new[] { SingleFile, IndexFile }.Select(f => Path.Combine(directory, f)))
            if (File.Exists(stale))
                File.Delete(stale);
        if (shards.Count == 1)
            SafetensorsFile.Write(Path.Combine(directory, SingleFile), shards[0], metadata);
        else
        {
            var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (var i = 0; i < shards.Count; i++)
            {
                var file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                SafetensorsFile.Write(Path.Combine(directory, file), shards[i], metadata);
                foreach (var (name, _) in shards[i])
                    weightMap[name] = file;
            }
            var total = named.Sum(n => n.Tensor.numel() * n.Tensor.element_size());
            var index = JsonSerializer.Serialize(
                new { metadata = new { total_size = total }, weight_map = weightMap },
                new JsonSerializerOptions { WriteIndented = true }
            );
            WriteAtomically(Path.Combine(directory, IndexFile), index);
        }
        WriteAtomically(Path.Combine(directory, ConfigFile), HfConfigWriter.ToJson(decoder.Spec, torchName));
    }

    private static void WriteAtomically(string path, string text)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }
}
