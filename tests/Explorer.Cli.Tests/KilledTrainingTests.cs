using System.Diagnostics;
using Explorer.Model.Training;
using Explorer.Model.Weights;

namespace Explorer.Cli.Tests;

/// <summary>
/// Faults: `explorer train` killed (SIGKILL, no chance to clean up) at several moments while it writes a checkpoint
/// every step. Each time the newest checkpoint the 'latest' pointer names loads whole, and --resume finishes the run.
/// </summary>
public sealed class KilledTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("explorer-kill-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Process Start(string folder, params string[] extra)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "explorer.dll"));
        foreach (
            var a in new[]
            {
                "train",
                "--model",
                "deepseek-7b-mini",
                "--out",
                folder,
                "--steps",
                "60",
                "--batch",
                "2",
                "--seq",
                "16",
                "--checkpoint-every",
                "1",
                "--warmup",
                "2",
            }.Concat(extra)
        )
            start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    [Fact]
    public async Task KilledWhileWritingCheckpointsLeavesTheLastGoodOneAndResumes()
    {
        var folder = Path.Combine(_dir, "run");
        var kills = 0;
        foreach (var delayMs in new[] { 0, 37, 113, 251 })
        {
            using var process = Start(folder, "--resume");
            var before = Trainer.Latest(folder)?.Step ?? 0;
            // Wait for a new checkpoint to appear, then kill at a moment that lands anywhere in the next writes.
            var watch = Stopwatch.StartNew();
            while (
                (Trainer.Latest(folder)?.Step ?? 0) <= before
                && !process.HasExited
                && watch.Elapsed < TimeSpan.FromSeconds(120)
            )
                await Task.Delay(10);
            await Task.Delay(delayMs);
            if (!process.HasExited)
            {
                process.Kill();
                kills++;
            }
            await process.WaitForExitAsync();

            var latest = Trainer.Latest(folder);
            Assert.NotNull(latest);
            Assert.True(latest.Value.Step > before, $"no checkpoint after step {before}");
            using var decoder = Checkpoint.Load(latest.Value.Directory);
            Assert.Equal(30, decoder.Spec.Layers);
            Assert.All(decoder.parameters(), p => Assert.False(p.isnan().any().item<bool>()));
        }
        Assert.True(kills >= 3, $"only {kills} of 4 runs were still going when killed");

        // The run resumes from what survived and finishes.
        using var finish = Start(folder, "--resume");
        await finish.WaitForExitAsync();
        Assert.Equal(0, finish.ExitCode);
        Assert.Equal(60, Trainer.Latest(folder)!.Value.Step);
    }
}
