using Explorer.Web.Services;

namespace Explorer.Web.Views;

/// <summary>
/// The Interventions page's link: model, partner, the two prompts, the answers, whether they are token ids, and the
/// residual method. Read leniently (<see cref="QueryNotes"/>): a value that cannot be used is left out with a note.
/// </summary>
public sealed record InterventionsQuery(
    string? Model,
    string? Partner,
    string? Clean,
    string? Corrupted,
    string? Answer,
    string? Wrong,
    string? Ids,
    string? Method
)
{
    /// <summary>Longest prompt or answer a link may carry; past this it is over any token limit here.</summary>
    public const int MaxText = 8_192;
    private const int MaxName = 200;

    /// <summary>Sets what the link gives on the session; returns the notes for what it left out.</summary>
    public static IReadOnlyList<string> Apply(InterventionSession session, InterventionsQuery q)
    {
        var notes = new QueryNotes();
        string? Text(string key, string? value, int max)
        {
            if (value is null)
                return null;
            if (value.Length == 0 || value.Length > max)
            {
                notes.Note(key, value, $"give 1 to {max:N0} characters");
                return null;
            }
            return value;
        }
        if (Text("model", q.Model, MaxName) is { } model)
            session.Model = model;
        if (q.Partner is "" or "none")
            session.Partner = null;
        else if (Text("partner", q.Partner, MaxName) is { } partner)
            session.Partner = partner;
        if (q.Ids is { } ids)
        {
            if (ids is "1" or "true")
                session.Ids = true;
            else if (ids is "0" or "false")
                session.Ids = false;
            else
                notes.Note("ids", ids, "use 1 (token ids) or 0 (text)");
        }
        if (Text("clean", q.Clean, MaxText) is { } clean)
            session.Clean = clean;
        if (Text("corrupted", q.Corrupted, MaxText) is { } corrupted)
            session.Corrupted = corrupted;
        if (Text("answer", q.Answer, MaxName) is { } answer)
            session.Answer = answer;
        if (Text("wrong", q.Wrong, MaxName) is { } wrong)
            session.Wrong = wrong;
        if (q.Method is { } method)
        {
            if (
                Enum.TryParse<PatchMethod>(method, ignoreCase: true, out var m)
                && Enum.IsDefined(m)
                && !int.TryParse(method, out _)
            )
                session.Method = m;
            else
                notes.Note("method", method, "use exact or attribution");
        }
        return notes.Notes;
    }

    public static InterventionsQuery From(InterventionSession s) =>
        new(
            s.Model,
            s.Partner ?? "none",
            s.Clean,
            s.Corrupted,
            s.Answer,
            s.Wrong,
            s.Ids ? "1" : null,
            s.Method == PatchMethod.Exact ? null : s.Method.ToString().ToLowerInvariant()
        );

    public Dictionary<string, object?> Parameters() =>
        new()
        {
            ["model"] = Model,
            ["partner"] = Partner,
            ["clean"] = Clean,
            ["corrupted"] = Corrupted,
            ["answer"] = Answer,
            ["wrong"] = Wrong,
            ["ids"] = Ids,
            ["method"] = Method,
        };
}
