namespace Explorer.Model.Hosting;

/// <summary>
/// A checkpoint the user can load: <paramref name="Name"/> is what the Models page lists and loads by (a folder name,
/// or <c>ORG/NAME</c> from a Hugging Face hub cache), <paramref name="Path"/> the folder holding config.json,
/// <paramref name="Revision"/> the hub snapshot's commit (null for a plain folder).
/// </summary>
public sealed record CheckpointEntry(string Name, string Path, string? Revision);

/// <summary>
/// Resolves names inside the configured models folder (and, optionally, a Hugging Face hub cache) and refuses
/// anything that leaves it. Symbolic links are followed while their target stays inside the same folder: that is
/// the hub cache's own shape (<c>models--ORG--NAME/snapshots/REV/*</c> link to <c>../../blobs/HASH</c>).
/// </summary>
public sealed class ModelsFolder
{
    private const string HubPrefix = "models--";

    public ModelsFolder(string root, string? hubCache = null)
    {
        Root = System.IO.Path.GetFullPath(root);
        HubCache = string.IsNullOrWhiteSpace(hubCache) ? null : System.IO.Path.GetFullPath(hubCache);
    }

    public string Root { get; }

    /// <summary>A Hugging Face hub cache listed beside the models folder (null: none).</summary>
    public string? HubCache { get; }

    /// <summary>
    /// The checkpoint a name stands for: an <c>ORG/NAME</c> of a hub cache (the models folder's own, or the configured
    /// one), else a folder given relative to the models folder. Throws <see cref="ArgumentException"/> saying why not.
    /// </summary>
    public CheckpointEntry Resolve(string name)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("Give the name of a checkpoint folder inside the models folder.");
        if (System.IO.Path.IsPathRooted(name))
            throw new ArgumentException(
                $"'{name}' is an absolute path; give a folder name inside the models folder ({Root})."
            );
        foreach (var cache in Caches())
        {
            CheckpointEntry? hub;
            try
            {
                hub = HubEntries(cache).FirstOrDefault(e => e.Name == name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"The hub cache {cache} cannot be read: {e.Message}");
            }
            if (hub is not null)
            {
                CheckLinks(hub.Path, cache, name);
                return hub;
            }
        }
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(Root, name));
        if (!IsInside(full, Root))
            throw new ArgumentException(
                $"'{name}' leads outside the models folder ({Root}); only folders inside it can be loaded."
            );
        if (!Directory.Exists(full))
            throw new ArgumentException($"There is no folder '{name}' in the models folder ({Root}).");
        CheckLinks(full, Root, name);
        return new CheckpointEntry(name, full, null);
    }

    /// <summary>What can be loaded: sub-folders holding a config.json, then each hub cache's models.</summary>
    public IReadOnlyList<CheckpointEntry> Checkpoints()
    {
        var result = new List<CheckpointEntry>();
        if (Directory.Exists(Root))
            result.AddRange(
                Directory
                    .EnumerateDirectories(Root)
                    .Where(d => File.Exists(System.IO.Path.Combine(d, Weights.Checkpoint.ConfigFile)))
                    .Select(d => new CheckpointEntry(System.IO.Path.GetFileName(d), d, null))
                    .OrderBy(e => e.Name, StringComparer.Ordinal)
            );
        foreach (var cache in Caches())
        {
            try
            {
                result.AddRange(HubEntries(cache).OrderBy(e => e.Name, StringComparer.Ordinal));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A cache this process cannot read lists nothing; the models folder's own entries still show.
            }
        }
        return result;
    }

    private IEnumerable<string> Caches()
    {
        yield return Root; // a models folder may itself be a hub cache
        if (HubCache is not null && HubCache != Root)
            yield return HubCache;
    }

    /// <summary>
    /// The models of a hub cache, one entry each: the snapshot <c>refs/main</c> names when it is there, else the
    /// newest snapshot holding a config.json.
    /// </summary>
    private static IEnumerable<CheckpointEntry> HubEntries(string cache)
    {
        if (!Directory.Exists(cache))
            yield break;
        foreach (var repo in Directory.EnumerateDirectories(cache, HubPrefix + "*"))
        {
            var parts = System.IO.Path.GetFileName(repo)[HubPrefix.Length..].Split("--");
            if (parts.Length is < 1 or > 2 || parts.Any(string.IsNullOrEmpty))
                continue;
            var snapshots = System.IO.Path.Combine(repo, "snapshots");
            if (!Directory.Exists(snapshots))
                continue;
            string? revision = null;
            var main = System.IO.Path.Combine(repo, "refs", "main");
            if (File.Exists(main) && new FileInfo(main).Length < 256)
            {
                var commit = File.ReadAllText(main).Trim();
                if (
                    commit.Length > 0
                    && commit.All(char.IsAsciiLetterOrDigit)
                    && File.Exists(System.IO.Path.Combine(snapshots, commit, Weights.Checkpoint.ConfigFile))
                )
                    revision = commit;
            }
            revision ??= new DirectoryInfo(snapshots)
                .EnumerateDirectories()
                .Where(d => File.Exists(System.IO.Path.Combine(d.FullName, Weights.Checkpoint.ConfigFile)))
                .OrderByDescending(d => d.LastWriteTimeUtc)
                .ThenBy(d => d.Name, StringComparer.Ordinal)
                .FirstOrDefault()
                ?.Name;
            if (revision is not null)
                yield return new CheckpointEntry(
                    string.Join('/', parts),
                    System.IO.Path.Combine(snapshots, revision),
                    revision
                );
        }
    }

    /// <summary>The folder, and every file in it, must resolve to somewhere inside <paramref name="root"/>, links
    /// followed.</summary>
    private static void CheckLinks(string folder, string root, string name)
    {
        var realRoot = RealPath(root);
        var realFolder = RealPath(folder);
        if (!IsInside(realFolder, realRoot))
            throw new ArgumentException($"'{name}' is a link to {realFolder}, outside the models folder ({root}).");
        foreach (var file in Directory.EnumerateFileSystemEntries(folder))
        {
            var real = RealPath(file);
            if (!IsInside(real, realRoot))
                throw new ArgumentException(
                    $"'{name}': {System.IO.Path.GetFileName(file)} is a link to {real}, outside the "
                        + $"models folder ({root})."
                );
        }
    }

    /// <summary>The path with every symbolic link along it resolved (as realpath(3) does); a dangling link stays as it
    /// is.</summary>
    public static string RealPath(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        var current = System.IO.Path.GetPathRoot(full)!;
        foreach (
            var part in full[current.Length..]
                .Split(System.IO.Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries)
        )
        {
            var next = System.IO.Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                next = RealPath(target.FullName);
            current = next;
        }
        return current;
    }

    private static bool IsInside(string full, string root) =>
        full == root
        || full.StartsWith(
            root.EndsWith(System.IO.Path.DirectorySeparatorChar) ? root : root + System.IO.Path.DirectorySeparatorChar,
            StringComparison.Ordinal
        );
}
