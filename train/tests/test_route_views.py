"""train/eval/route_views.py: the recency correlation is what it says (a router that scores by
recency reads +1, one that scores against it -1), the bootstrap summary, and a smoke run."""
import json

import numpy as np
import torch

from train import moc
from train.eval import route_views as rv
from train.model import make_config, MoCDiT

torch.set_num_threads(2)


def test_masked_corr_is_pearson_over_the_mask():
    g = np.random.default_rng(0)
    x, y = g.standard_normal((4, 9)), g.standard_normal((4, 9))
    m = g.random((4, 9)) < 0.7
    m[:3, :4] = True  # at least 4 entries
    m[3] = False
    m[3, :2] = True  # too few entries: NaN
    r = rv._masked_corr(torch.tensor(x), torch.tensor(y), torch.tensor(m)).numpy()
    for i in range(3):
        assert np.isclose(r[i], np.corrcoef(x[i, m[i]], y[i, m[i]])[0, 1])
    assert np.isnan(r[3])


def _trace_scoring(layout, sign: float, depth=1, H=2, D=4):
    """A trace whose routing score is sign x the candidate's frame index: q = (1, 0...), keys of
    frame f = (sign * f, ...); routed = top-2 by that score."""
    ch = moc.Chunks.from_layout(layout)
    N, G2 = layout.n_tokens, layout.n_video // sum(layout.frames)
    k = torch.zeros(1, H, N, D)
    q = torch.zeros(1, H, N, D)
    q[..., 0] = 1.0
    f = torch.zeros(N)
    f[layout.n_text :] = torch.arange(layout.n_video, dtype=torch.float32) // G2
    k[..., 0] = sign * f
    routed = moc.route(q, k, ch, 2, True)
    return {f"blocks.{i}.{s}": t for i in range(depth) for s, t in (("attn.q", q), ("attn.k", k), ("routed", routed))}


def test_recency_reads_plus_one_for_a_recency_router_and_minus_one_against_it():
    lay = MoCDiT(make_config("tiny")).layout((3, 3, 3), 1)
    up = rv.recency(_trace_scoring(lay, 1.0), 0, lay, depth=1, top_k=2)
    down = rv.recency(_trace_scoring(lay, -1.0), 0, lay, depth=1, top_k=2)
    assert np.isclose(up["score"], 1.0) and np.isclose(down["score"], -1.0)
    assert up["pick"] > 0.5 and down["pick"] < -0.5


def test_summary_intervals_and_paired_differences():
    cases = [{"scene": s, "score": float(s % 2), "char": 0.5 + 0.1 * (s % 2), "bg": 0.5} for s in range(6)]
    a = {"cases": cases, "recency": [{"score": 0.5, "pick": 0.2}] * 6}
    b = {"cases": cases, "recency": [{"score": 0.0, "pick": 0.0}] * 6}
    out = rv.summarise({"rotary": a, "spatial": b}, 6, reps=200)
    assert np.isclose(out["rotary"]["probe"], 0.5) and np.isclose(out["rotary"]["gap"], 0.05)
    lo, hi = out["rotary"]["probe_ci"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    assert out["spatial"]["recency_score_diff_ci"] == [-0.5, -0.5]
    assert "| spatial |" in rv.markdown(out)


def test_smoke_run_and_combine(tmp_path):
    outs = []
    for view in ("rotary", "unrotated"):
        outs.append(str(tmp_path / f"{view}.json"))
        rv.main(
            [
                "--ckpt",
                "random:tiny",
                "--storyboards",
                "2",
                "--frames",
                "2",
                "--views",
                view,
                "--reps",
                "20",
                "--threads",
                "2",
                "--out",
                outs[-1],
            ]
        )
    with open(outs[0]) as f:
        run = json.load(f)
    assert run["settings"]["views"] == "rotary" and len(run["per_view"]["rotary"]["recency"]) == 2
    summary = rv.main(["--combine", *outs, "--reps", "20"])
    assert set(summary) == {"rotary", "unrotated"}
