using System.CommandLine;
using Explorer.Core.Formatting;
using Explorer.Core.Specs;
using Explorer.Model.Weights;
using static TorchSharp.torch;

namespace Explorer.Cli;

/// <summary>
/// <c>explorer make-checkpoint</c>: a Hugging Face-layout checkpoint of a published shape with random weights, so that
/// load time, memory and speed at full size can be reproduced without downloading one.
/// </summary>
public static class MakeCheckpointCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var shape = new Option<string>("--shape", "-s")
        {
            Description =
                $"A preset shape: {string.Join(", ", ModelPresets.Names.Concat(MiniPresets.All.Select(m => m.Name)))}.",
            Required = true,
        };
        var outDir = new Option<DirectoryInfo>("--out", "-o")
        {
            Description = "The folder to write (created; must be empty or absent).",
            Required = true,
        };
        var layers = new Option<int?>("--layers")
        {
            Description = "Keep only the first N layers (a 67B shape cut to fit a disk), at full width.",
        };
        var dtype = new Option<string>("--dtype")
        {
            Description = "bf16, fp16 or fp32.",
            DefaultValueFactory = _ => "bf16",
        };
        var shard = new Option<double>("--shard-gb")
        {
            Description = "Largest shard in GB (10^9 bytes); 5 as Hugging Face writes them.",
            DefaultValueFactory = _ => 5,
        };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1234 };
        var command = new Command(
            "make-checkpoint",
            "Write a random-weight checkpoint of a preset shape (config.json, safetensors shards, tokenizer.json)."
        )
        {
            shape,
            outDir,
            layers,
            dtype,
            shard,
            seed,
        };
        CommandAction.Set(command, error, result =>
        {
            var name = result.GetValue(shape)!;
            var spec = KnownModels.Get(name, "--shape");
            if (result.GetValue(layers) is { } cut)
            {
                if (cut < 1 || cut > spec.Layers)
                    throw new ArgumentException(
                        $"--layers {cut}: {spec.Name} has {spec.Layers} layers; keep 1 to {spec.Layers}."
                    );
                spec = spec with { Name = $"{spec.Name}-{cut}-layers", Layers = cut };
            }
            var type = result.GetValue(dtype)!.Trim().ToLowerInvariant() switch
            {
                "bf16" or "bfloat16" => ScalarType.BFloat16,
                "fp16" or "f16" or "float16" => ScalarType.Float16,
                "fp32" or "f32" or "float32" => ScalarType.Float32,
                var other => throw new ArgumentException($"--dtype '{other}': use bf16, fp16 or fp32."),
            };
            var gb = result.GetValue(shard);
            if (!(gb >= 0.0001 && gb <= 1000))
                throw new ArgumentException($"--shard-gb {gb}: use 0.0001 to 1000.");
            var folder = result.GetValue(outDir)!;
            if (folder.Exists && folder.EnumerateFileSystemInfos().Any())
                throw new ArgumentException($"--out {folder.FullName} is not empty; give a new or empty folder.");
            var bytes = Core.Accounting.ParameterBreakdown.Of(spec).Total * (type == ScalarType.Float32 ? 4 : 2);
            var free = new DriveInfo(Path.GetPathRoot(Path.GetFullPath(folder.FullName))!).AvailableFreeSpace;
            if (bytes > free)
                throw new ArgumentException(
                    $"{spec.Name} in {type} needs {Units.Bytes(bytes)} on disk; {Units.Bytes(free)} are free there."
                );
            output.WriteLine(
                $"writing {spec.Name} ({spec.Layers} layers, d {spec.HiddenSize}, {type}, "
                    + $"{Units.Bytes(bytes)}) to {folder.FullName}"
            );
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var lastTenth = 0;
            RandomCheckpoint.Write(
                spec,
                folder.FullName,
                type,
                (long)(gb * 1e9),
                result.GetValue(seed),
                new Model.SyncProgress<double>(f =>
                {
                    if ((int)(f * 10) > lastTenth)
                        error.WriteLine($"  {(lastTenth = (int)(f * 10)) * 10}%");
                })
            );
            output.WriteLine($"done in {watch.Elapsed.TotalSeconds:0.0} s");
            return ExitCodes.Ok;
        });
        return command;
    }
}
