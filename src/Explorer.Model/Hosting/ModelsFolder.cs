namespace Explorer.Model.Hosting;

/// <summary>Resolves names inside the configured models folder and refuses anything that leaves it.</summary>
public sealed class ModelsFolder(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The full path of a checkpoint folder given relative to the root, or an error saying why not.</summary>
    public string Resolve(string relative)
    {
        if (string.IsNullOrWhiteSpace(relative))
            throw new ArgumentException("Give the name of a checkpoint folder inside the models folder.");
        if (Path.IsPathRooted(relative))
            throw new ArgumentException($"'{relative}' is an absolute path; give a folder name inside the models folder ({Root}).");
        var full = Path.GetFullPath(Path.Combine(Root, relative));
        if (!IsInside(full))
            throw new ArgumentException($"'{relative}' leads outside the models folder ({Root}); only folders inside it can be loaded.");
        var info = new DirectoryInfo(full);
        if (!info.Exists)
            throw new ArgumentException($"There is no folder '{relative}' in the models folder ({Root}).");
        // A link inside the folder must not point out of it either.
        for (var dir = info; dir is not null && dir.FullName.Length > Root.Length; dir = dir.Parent)
            if (dir.LinkTarget is not null && dir.ResolveLinkTarget(returnFinalTarget: true) is { } target && !IsInside(Path.GetFullPath(target.FullName)))
                throw new ArgumentException($"'{relative}' is a link to {target.FullName}, outside the models folder ({Root}).");
        return full;
    }

    /// <summary>Sub-folders that hold a config.json: the checkpoints a user can load.</summary>
    public IReadOnlyList<string> Checkpoints()
    {
        if (!Directory.Exists(Root))
            return [];
        return Directory.EnumerateDirectories(Root)
            .Where(d => File.Exists(Path.Combine(d, Weights.Checkpoint.ConfigFile)))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Order(StringComparer.Ordinal)
            .ToArray();
    }

    private bool IsInside(string full) =>
        full.StartsWith(Root.EndsWith(Path.DirectorySeparatorChar) ? Root : Root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}
