using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Explorer.Web.Views;

/// <summary>The Layers page's summaries as files: JSON (everything) and CSV (one row per layer).</summary>
public static class SummaryExport
{
    public static string Json(IEnumerable<LayerSummary> summaries) =>
        JsonSerializer.Serialize(
            summaries.Select(s => new
            {
                model = s.Model,
                layers = s.Layers,
                tokens = s.Tokens,
                meanResidualNorm = s.MeanResidualNorm,
                growthRatio = s.GrowthRatio,
                blockInfluence = s.BlockInfluence,
                relativeUpdate = s.RelativeUpdate,
                attentionNorm = s.AttentionNorm,
                ffnNorm = s.FfnNorm,
                lensPositions = s.LensPositions,
                lensTopToken = Rows(s.LensTopToken),
                lensTopProbability = Rows(s.LensTopProbability),
                lensKlToFinal = Rows(s.LensKl),
                firstTop1Layer = s.FirstTop1Layer,
            }),
            new JsonSerializerOptions { WriteIndented = true }
        );

    public static string Csv(IEnumerable<LayerSummary> summaries)
    {
        var csv = new StringBuilder(
            "model,layer,relative_depth,mean_residual_norm,growth_ratio,block_influence,relative_update,"
                + "attention_norm,ffn_norm\n"
        );
        foreach (var s in summaries)
            for (var l = 0; l < s.Layers; l++)
                csv.AppendLine(
                    string.Join(
                        ',',
                        s.Model,
                        (l + 1).ToString(CultureInfo.InvariantCulture),
                        F((l + 1.0) / s.Layers),
                        F(s.MeanResidualNorm[l + 1]),
                        F(s.GrowthRatio[l]),
                        F(s.BlockInfluence[l]),
                        F(s.RelativeUpdate[l]),
                        F(s.AttentionNorm[l]),
                        F(s.FfnNorm[l])
                    )
                );
        return csv.ToString();
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static T[][] Rows<T>(T[,] m) =>
        Enumerable
            .Range(0, m.GetLength(0))
            .Select(r => Enumerable.Range(0, m.GetLength(1)).Select(c => m[r, c]).ToArray())
            .ToArray();
}
