using Explorer.Core.Specs;
using Explorer.Model.Decoder;
using Explorer.Model.Hosting;
using Explorer.Model.Patching;
using Explorer.Web.Views;

namespace Explorer.Web.Tests;

public class HeadAblationViewTests
{
    [Fact]
    public void TheSentenceAndTheChipsFollowTheEffect()
    {
        var effect = new AblationEffect(
            [new Prediction(7, 0.6, 3f), new Prediction(2, 0.2, 1f), new Prediction(4, 0.1, 0f)],
            [new Prediction(2, 0.5, 2f), new Prediction(7, 0.3, 1.5f), new Prediction(9, 0.1, 0f)],
            KlFromClean: 0.25,
            TopBefore: 0.6,
            TopAfter: 0.3
        );
        var view = HeadAblationView.From(effect, id => $"t{id}", "Head 1 of layer 2 zeroed");
        Assert.Equal(
            "The top prediction ‘t7’ goes from 60.0% to 30.0% and gives way to ‘t2’ (50.0%); "
                + "the KL divergence from the plain prediction is 0.25 nats.",
            view.Summary
        );
        // t4 leaves the top three, t9 enters it.
        Assert.Equal([false, false, true], view.Before.Select(c => c.Moved));
        Assert.Equal([false, false, true], view.After.Select(c => c.Moved));
        Assert.Equal(["t2", "t7", "t9"], view.After.Select(c => c.Piece));
    }

    [Fact]
    public void AKvGroupIsEveryQueryHeadThatSharesTheKvHead()
    {
        var spec = MiniPresets.DeepSeek67BMini; // 4 query heads over 1 KV head
        var sites = HeadAblationView.Sites(spec, layer: 5, head: 2, wholeGroup: true, Ablation.Mean);
        Assert.Equal(
            Enumerable.Range(0, spec.QueriesPerKeyValueHead).Select(h => (new HeadSite(5, h), Ablation.Mean)),
            sites.Heads
        );
        Assert.Equal(
            "KV group 0 of layer 6 (heads 0–3) replaced by its mean over the prompt",
            HeadAblationView.Describe(spec, 5, 2, wholeGroup: true, Ablation.Mean)
        );
        Assert.Equal(
            [(new HeadSite(5, 2), Ablation.Zero)],
            HeadAblationView.Sites(spec, 5, 2, wholeGroup: false, Ablation.Zero).Heads
        );
    }

    [Fact]
    public void OnTheTrainedMiniTheBestInductionHeadCarriesTheInductionAnswer()
    {
        // A repeated sequence: after the second 558 the induction answer is 1344, the token that followed the first.
        // Head 3 of layer 18 is the mini's best induction head on the probe (AttentionProbe); zeroing it must cost the
        // answer more than zeroing any other head of its layer.
        int[] ids =
        [
            850,
            2631,
            3771,
            3586,
            3428,
            558,
            1344,
            782,
            2329,
            3416,
            2141,
            2234,
            850,
            2631,
            3771,
            3586,
            3428,
            558,
        ];
        var live = LiveModel.Mini(MiniPresets.DeepSeek7BMini);
        var views = Enumerable
            .Range(0, 4)
            .Select(h => HeadAblationView.Measure(live, ids, layer: 17, head: h, wholeGroup: false, Ablation.Zero))
            .ToArray();
        var best = views[3];
        Assert.Equal(HeadAblationView.Shown, best.Before.Count);
        Assert.NotEqual(best.Before[0].Piece, best.After[0].Piece);
        for (var h = 0; h < 3; h++)
            Assert.True(
                best.KlFromClean > views[h].KlFromClean,
                $"head 3: KL {best.KlFromClean}; head {h}: {views[h].KlFromClean}"
            );

        // And the answer's own probability falls most with that head gone.
        double Answer(Interventions i) =>
            PatchingMetric.Probability(AblationEffect.LastLogits(live.Decoder, ids, i), 1344);
        var plain = Answer(Interventions.None);
        var after = Enumerable
            .Range(0, 4)
            .Select(h => Answer(HeadAblationView.Sites(live.Spec, 17, h, false, Ablation.Zero)))
            .ToArray();
        Assert.True(after[3] < plain / 2, $"P(answer) {plain} → {after[3]}");
        Assert.Equal(3, Array.IndexOf(after, after.Min()));
    }
}
