namespace Explorer.Model;

/// <summary>
/// Reports progress on the calling thread, at once. <see cref="Progress{T}"/> posts to a synchronisation context
/// (or the thread pool), so its reports can arrive late or out of order.
/// </summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
