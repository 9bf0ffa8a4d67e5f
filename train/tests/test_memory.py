"""train/eval/memory.py and stats.py: the memory gain is 1 for an oracle that copies shot 0, 0 for
anything that cannot see it, proportional in between; cluster-bootstrap intervals are as wide as
the number of clusters, not of values, allows."""
import json

import numpy as np
import pytest
import torch

from train.eval import memory
from train.eval.generate import load_model
from train.eval.stats import mean_ci, means_ci

torch.set_num_threads(2)
SIZE, TEXT_LEN = 16, 24


@pytest.fixture(scope="module")
def scenes():
    return memory.probe_scenes(3, seed=0, shots=2, frames=3)


def oracle(scenes, follow: float = 1.0, attributes=tuple(memory.ATTRIBUTES)):
    """x̂0 of the later shots = the render (true or altered) whose shot 0 the input shows, blended
    `follow` of the way from the truth: a model with perfect (or partial) memory."""
    table = []
    for _, _, r, r2, _ in memory.cases(scenes, list(attributes), SIZE):
        table.append((r, r2))

    def predict(xt, t_shot, text, frames):
        f0, out = frames[0], xt.clone()
        for b in range(xt.shape[0]):
            hit = [(r, r2) for r, r2 in table if torch.equal(xt[b, :f0], r[:f0]) or torch.equal(xt[b, :f0], r2[:f0])]
            r, r2 = hit[0]
            shown_alt = torch.equal(xt[b, :f0], r2[:f0])
            out[b, f0:] = (r + follow * (r2 - r))[f0:] if shown_alt else r[f0:]
        return out

    return predict


def run(predict, scenes, **kw):
    return memory.gains(predict, scenes, size=SIZE, text_len=TEXT_LEN, **kw)


def test_every_attribute_applies_to_the_probe_scenes(scenes):
    got = {a for _, a, *_ in memory.cases(scenes, list(memory.ATTRIBUTES), SIZE)}
    assert got == set(memory.ATTRIBUTES)


@pytest.mark.parametrize("follow", [1.0, 0.5])
def test_an_oracle_that_follows_shot_0_scores_its_share(scenes, follow):
    recs = run(oracle(scenes, follow), scenes)
    assert len(recs) >= 8
    for r in recs:
        assert r["gain"] == pytest.approx(follow, abs=1e-6), r


def test_a_predictor_that_ignores_shot_0_scores_zero(scenes):
    recs = run(lambda xt, t, text, frames: xt * 0.9 + 0.05, scenes)  # sees only the noisy later shots
    assert recs and all(abs(r["gain"]) < 1e-9 for r in recs)


def test_a_model_scores_zero_only_with_memory_switched_off(scenes):
    lm = load_model("random:tiny", seed=3)
    res = {m: run(memory.model_predictor(lm, m, chunk_frames=1, top_k=2), scenes) for m in ("dense", "shot")}
    assert all(abs(r["gain"]) < 1e-6 for r in res["shot"])  # attention to other shots masked
    assert max(abs(r["gain"]) for r in res["dense"]) > 1e-4  # the same weights with memory on


def test_truth_noise_is_shared_by_both_runs(scenes):
    """The later shots' input is the same in both runs: a predictor returning its input plus the
    difference it sees in shot 0 would score 0 if the noise differed between the runs too."""
    seen = []

    def spy(xt, t_shot, text, frames):
        seen.append(xt.clone())
        assert torch.all(t_shot[:, 0] == 0) and torch.all(t_shot[:, 1:] == 0.5)
        return xt

    run(spy, scenes, batch=2)
    for x in seen:
        B = x.shape[0] // 2
        assert torch.equal(x[:B, 3:], x[B:, 3:]) and not torch.equal(x[:B, :3], x[B:, :3])


def test_cli_writes_json(tmp_path):
    out = tmp_path / "m.json"
    res = memory.main(
        [
            "--ckpt",
            "random:tiny",
            "--scenes",
            "2",
            "--frames",
            "3",
            "--modes",
            "shot",
            "--attributes",
            "scenery,size",
            "--out",
            str(out),
        ]
    )
    saved = json.loads(out.read_text())
    assert set(saved["runs"][0]["modes"]["shot"]) == {"scenery", "size"}
    assert res["runs"][0]["modes"]["shot"]["size"]["score"] == pytest.approx(0.0, abs=1e-6)
    bare = memory.memory_probe(load_model("random:tiny").model, scenes=1, frames=3, modes=["shot"])  # the trainer's way
    assert set(bare["modes"]["shot"]) == set(memory.ATTRIBUTES)
    with pytest.raises(ValueError, match="unknown attributes"):
        memory.memory_probe(load_model("random:tiny"), scenes=1, attributes=["hat"])


def test_attributes_are_pluggable(scenes, monkeypatch):
    monkeypatch.setitem(memory.ATTRIBUTES, "nothing", lambda sc, rng: sc)  # no visible change: no case
    monkeypatch.setitem(memory.ATTRIBUTES, "flip", lambda sc, rng: memory.alter_colour(sc, rng))
    attrs = ["nothing", "flip"]
    recs = run(oracle(scenes, 1.0, attrs), scenes, attributes=attrs)
    assert {r["attribute"] for r in recs} == {"flip"} and all(r["gain"] == pytest.approx(1.0) for r in recs)


# ---- stats ----------------------------------------------------------------------------------
def test_cluster_bootstrap_is_as_wide_as_the_clusters_allow():
    rng = np.random.default_rng(0)
    means = rng.normal(0.0, 1.0, 10)  # 10 clusters
    values = np.repeat(means, 50)  # 50 identical tests each
    clusters = np.repeat(np.arange(10), 50)
    naive = mean_ci(values)  # 500 "independent" tests
    clustered = mean_ci(values, clusters)
    of_means = mean_ci(means)
    assert clustered["score"] == pytest.approx(means.mean())
    width = lambda r: r["hi"] - r["lo"]
    assert width(clustered) == pytest.approx(width(of_means), rel=0.15)  # 10 clusters, not 500 tests
    assert width(clustered) > 4 * width(naive)
    assert clustered["lo"] < means.mean() < clustered["hi"]


def test_bootstrap_of_a_constant_and_combined_keys():
    r = mean_ci([0.7] * 20, [i // 4 for i in range(20)])
    assert r["score"] == r["lo"] == r["hi"] == pytest.approx(0.7)
    out = means_ci({"a": ([1.0, 1.0], [0, 1]), "b": ([0.0, 0.0, 0.0], [0, 1, 2])}, combine={"ab": ["a", "b", "c"]})
    assert out["ab"]["score"] == 0.5 and out["ab"]["parts"] == ["a", "b"]
    assert out["a"]["clusters"] == 2 and out["b"]["clusters"] == 3


def test_bootstrap_interval_covers_the_truth_about_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    for k in range(200):
        m = rng.normal(0.3, 1.0, 30)  # 30 clusters of 3 correlated tests
        v = np.repeat(m, 3) + rng.normal(0, 0.1, 90)
        r = mean_ci(v, np.repeat(np.arange(30), 3), draws=400, seed=k)
        hits += r["lo"] <= 0.3 <= r["hi"]
    assert 0.88 <= hits / 200 <= 0.99
