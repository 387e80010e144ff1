using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Explorer.Browser.Tests;

/// <summary>Runs the built web app as a real server on a free 127.0.0.1 port for the duration of a test
/// class.</summary>
public sealed class AppServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _log = [];
    private readonly string _crashFolder;

    public Uri BaseAddress { get; }

    /// <summary>
    /// Whether the server is still up, and if not its exit code and the last lines it wrote: what a test reports when
    /// the server stops answering (a native abort prints its reason on stderr; 137 is a SIGKILL, e.g. the OOM killer).
    /// </summary>
    public string Describe(int lastLines = 40)
    {
        var state = _process.HasExited
            ? $"the app server exited with code {_process.ExitCode} at {_process.ExitTime:HH:mm:ss}"
            : $"the app server (pid {_process.Id}) is still running, resident {ResidentMiB():0} MiB";
        string[] tail;
        lock (_log)
            tail = _log.TakeLast(lastLines).ToArray();
        return state + CrashReport() + "; the last lines of its log:\n" + string.Join('\n', tail);
    }

    /// <summary>The crashed thread's frames from the runtime's crash report (DOTNET_EnableCrashReport), if it wrote
    /// one.</summary>
    private string CrashReport()
    {
        var file = Directory.Exists(_crashFolder)
            ? Directory.GetFiles(_crashFolder, "*.crashreport.json").FirstOrDefault()
            : null;
        if (file is null)
            return "";
        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
            var frames = json
                .RootElement.GetProperty("payload")
                .GetProperty("threads")
                .EnumerateArray()
                .Where(t => t.TryGetProperty("crashed", out var c) && c.GetString() == "true")
                .SelectMany(t => t.GetProperty("stack_frames").EnumerateArray())
                .Select(f =>
                    string.Join(
                        ' ',
                        new[] { "module_name", "method_name", "unmanaged_name" }
                            .Select(k => f.TryGetProperty(k, out var v) ? v.GetString() : null)
                            .Where(v => !string.IsNullOrEmpty(v))
                    )
                )
                .Take(40);
            return $"; crash report {file}, crashed thread:\n  " + string.Join("\n  ", frames) + "\n";
        }
        catch (Exception e)
            when (e
                    is IOException
                        or System.Text.Json.JsonException
                        or KeyNotFoundException
                        or InvalidOperationException
            )
        {
            return $"; crash report {file} (unreadable: {e.Message})";
        }
    }

    private double ResidentMiB()
    {
        try
        {
            _process.Refresh();
            return _process.WorkingSet64 / 1048576.0;
        }
        catch (InvalidOperationException)
        {
            return double.NaN;
        }
    }

    private AppServer(Process process, Uri baseAddress, string crashFolder)
    {
        _process = process;
        BaseAddress = baseAddress;
        _crashFolder = crashFolder;
    }

    public string Log
    {
        get
        {
            lock (_log)
                return string.Join('\n', _log);
        }
    }

    public static async Task<AppServer> StartAsync(IReadOnlyDictionary<string, string>? environment = null)
    {
        var root = RepositoryRoot();
        // bin/<Configuration>/net10.0
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var project = Path.Combine(root, "src", "Explorer.Web");
        var dll = Path.Combine(project, "bin", configuration, "net10.0", "Explorer.Web.dll");
        if (!File.Exists(dll))
            throw new FileNotFoundException($"Build the web app first: {dll} is missing.", dll);

        var port = FreePort();
        var address = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = project,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(address.ToString().TrimEnd('/'));
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        // A native crash leaves the runtime's crash report (every thread's frames, managed and native) where Describe
        // finds it.
        var crashFolder = Directory.CreateTempSubdirectory("explorer-crash-").FullName;
        start.Environment["DOTNET_DbgEnableMiniDump"] = "1";
        start.Environment["DOTNET_DbgMiniDumpType"] = "1";
        start.Environment["DOTNET_DbgMiniDumpName"] = Path.Combine(crashFolder, "server-%p.dmp");
        start.Environment["DOTNET_EnableCrashReport"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the web app.");
        var server = new AppServer(process, address, crashFolder);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"The web app exited with code {process.ExitCode}:\n{server.Log}");
            try
            {
                if ((await http.GetAsync(address)).IsSuccessStatusCode)
                    return server;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(250);
        }
        await server.DisposeAsync();
        throw new TimeoutException($"The web app did not answer on {address} within 60 s:\n{server.Log}");
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_log)
            _log.Add(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        if (Directory.Exists(_crashFolder) && Directory.GetFiles(_crashFolder).Length == 0)
            Directory.Delete(_crashFolder); // a crash report stays where the failure message said
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Explorer.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException("Explorer.sln not found above " + AppContext.BaseDirectory);
    }
}
