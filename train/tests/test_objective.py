"""The memory levers of train/objective.py (issue 16): each off by default, each tested."""
import os

import numpy as np
import pytest
import torch

from train import checkpoint
from train.data import WorldDataset
from train.objective import (
    AuxHead,
    Curriculum,
    HiddenCapture,
    aux_targets,
    frame_weights,
    prefix_rows,
    prefix_t,
    recurrences,
)
from train.render import render_shot
from train.train import main, sample_timesteps
from train.world import sample_scene

TINY = [
    "--config",
    "tiny",
    "--device",
    "cpu",
    "--workers",
    "0",
    "--threads",
    "1",
    "--shots",
    "3",
    "--frames",
    "2",
    "--batch-size",
    "2",
    "--log-every",
    "1",
    "--ckpt-every",
    "0",
]


def _t(regimes, B=4000, S=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return sample_timesteps(B, S, regimes, g, "cpu"), g


def test_prefix_t_raises_only_the_noisy_shots_of_clean_prefix_samples():
    t, g = _t((0.0, 0.0, 1.0))
    state = g.get_state()
    assert torch.equal(prefix_t(t, None, g), t) and torch.equal(g.get_state(), state)  # off: no draw
    hi = prefix_t(t, (1.5, 0.5), g)
    assert torch.equal(hi == 0, t == 0)  # clean shots stay clean
    assert t[t > 0].mean() < 0.55 and hi[hi > 0].mean() > 0.75
    for row in hi[:50]:  # noisy shots still share one t
        assert len(set(row[row > 0].tolist())) == 1
    other, g2 = _t((1.0, 1.0, 0.0))
    assert not prefix_rows(other).any() and torch.equal(prefix_t(other, (1.5, 0.5), g2), other)


def test_x0_weight_is_t_squared_power_normalised_on_clean_prefix_rows():
    t_shot = torch.tensor([[0.0, 0.2, 0.8], [0.3, 0.5, 0.7]])
    t = t_shot.repeat_interleave(2, dim=1)  # 2 frames a shot
    assert torch.equal(frame_weights(t, t_shot, 0.0), torch.ones_like(t))
    r = frame_weights(t, t_shot, 1.0)
    assert torch.equal(r[1], torch.ones(6)) and r[0, :2].tolist() == [1.0, 1.0]
    noisy = r[0, 2:]
    assert noisy.mean().item() == pytest.approx(1.0)
    assert (noisy[2] / noisy[0]).item() == pytest.approx((0.8 / 0.2) ** 2)


def test_curriculum_starts_with_next_shot_recurrences_and_ends_unconstrained():
    cur = Curriculum(steps=90, shots=4)
    assert cur.limits(0) == (1, False) and cur.limits(45) == (2, True) and cur.limits(90) is None

    def draw(seed):
        return sample_scene(seed, shots=4, frames=1)

    natural = [draw(s) for s in range(60)]
    assert sum(not cur.fits(s, 0) for s in natural) > 20  # the constraint is not a no-op
    for s in range(60):
        scene = cur.scene(draw, s, 0)
        rec = recurrences(scene)
        assert rec and all(b - a == 1 and not changed for _, a, b, changed in rec)
        late = cur.scene(draw, s, 90)
        assert late.to_dict() == draw(s).to_dict()
    ds = WorldDataset(0, 4, 1, 16, 24, curriculum=cur, step_items=2)
    assert ds.scene(3).to_dict() == ds.scene(3).to_dict()  # a pure function of the index


def test_aux_targets_cover_recurring_characters_after_their_first_shot():
    hits = 0
    for seed in range(30):
        s = sample_scene(seed, shots=4, frames=2, version=2)
        vis = [render_shot(s, i, 32, masks=True)[1] for i in range(4)]
        cover, labels = aux_targets(s, vis, 32, 4)
        assert cover.shape == (3, 8, 8, 8) and labels.shape == (3, 3)
        first = {}
        for i, shot in enumerate(s.shots):
            for a in shot.actors:
                first.setdefault(a.char, i)
        for c in range(1, 4):
            if c > len(s.cast):
                assert (labels[c - 1] == -1).all() and cover[c - 1].sum() == 0
                continue
            f = first.get(c, 4)
            assert cover[c - 1, : 2 * (f + 1)].sum() == 0
            later = sum(vis[i].get(c, np.zeros(1)).sum() for i in range(f + 1, 4)) / 16.0
            assert cover[c - 1].sum() == pytest.approx(later)
            hits += later > 0
            assert labels[c - 1, 2] >= 0
    assert hits >= 10


def test_aux_head_learns_attributes_from_pooled_tokens():
    torch.manual_seed(0)
    B, C, T, G, d = 16, 3, 2, 2, 8
    labels = torch.stack([torch.randint(0, n, (B, C)) for n in (4, 2, 8)], -1)
    cover = torch.zeros(B, C, T, G, G)
    h = torch.randn(B, T * G * G, d) * 0.1
    for b in range(B):
        for c in range(C):
            tok = (b + c) % (T * G * G)
            cover[b, c].view(-1)[tok] = 1.0
            h[b, tok, :4] += torch.nn.functional.one_hot(labels[b, c, 0], 4).float() * 3
    head = AuxHead(d)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    noisy = torch.ones(B, T)
    first = None
    for _ in range(60):
        loss = head.loss(h, cover, labels, noisy)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first
    zero = head.loss(h.requires_grad_(), cover, labels, torch.zeros(B, T))  # no noisy frame: nothing counts
    assert zero.item() == 0.0 and zero.requires_grad


def test_hidden_capture_sees_the_video_stream():
    from train.model import MoCDiT, make_config

    m = MoCDiT(make_config("tiny"))
    with HiddenCapture(m) as cap:
        m(torch.randn(1, 4, 3, 16, 16), torch.rand(1, 2), torch.zeros(1, 3, 24, dtype=torch.long))
    assert cap.h.shape == (1, 4 * 16, 32)


def test_levers_train_resume_and_export_drops_the_aux_head(tmp_path):
    from train.export import load_exported, main as export_main
    from train.model import MoCDiT

    args = TINY + [
        "--steps",
        "3",
        "--schedule",
        "dense@2,1x2",
        "--world",
        "v2",
        "--prefix-t",
        "1,1",
        "--x0-weight",
        "1",
        "--aux-weight",
        "0.5",
        "--curriculum",
        "2",
        "--t-regimes",
        "0,0,1",
    ]
    logs = main(args + ["--out", str(tmp_path / "run")])
    assert all(np.isfinite(r["loss"]) and r["aux_loss"] > 0 for r in logs if "loss" in r)
    state = checkpoint.load(str(tmp_path / "run"))
    assert set(state["aux"]) == {
        "heads.0.weight",
        "heads.0.bias",
        "heads.1.weight",
        "heads.1.bias",
        "heads.2.weight",
        "heads.2.bias",
    }
    assert state["args"]["world"] == "v2" and state["args"]["aux_weight"] == 0.5
    export_main(["--ckpt", str(tmp_path / "run"), "--ema", "--name", "x", "--out", str(tmp_path / "x")])
    model, cfg, meta = load_exported(str(tmp_path / "x"))  # refuses extra tensor names
    assert meta["world_version"] == 2 and "oracle_captions" not in meta
    from train import safetensors_io

    names = set(safetensors_io.load(str(tmp_path / "x" / "model.safetensors"))[0])
    assert names == set(MoCDiT(cfg).state_dict()) and not any("heads." in n for n in names)


def test_oracle_run_exports_the_oracle_vocabulary(tmp_path):
    import json
    from train.export import load_exported, main as export_main

    main(TINY + ["--steps", "1", "--oracle-captions", "--world", "v2", "--out", str(tmp_path / "run")])
    export_main(["--ckpt", str(tmp_path / "run"), "--name", "o", "--out", str(tmp_path / "o")])
    _, cfg, meta = load_exported(str(tmp_path / "o"))
    words = json.load(open(tmp_path / "o" / "vocab.json"))["words"]
    assert meta["oracle_captions"] is True and cfg.vocab_size == len(words) > 45 and cfg.text_len == 32
    assert "halved" in words and "large" in words
    from train.sample import main as sample_main  # the oracle's captions, v2 truth

    png = sample_main(
        [
            "--ckpt",
            str(tmp_path / "run"),
            "--scene",
            "0",
            "--shots",
            "3",
            "--frames",
            "2",
            "--steps",
            "1",
            "--mode",
            "dense",
            "--out",
            str(tmp_path / "s.png"),
        ]
    )
    assert os.path.getsize(png) > 100


def test_memory_loss_probe_is_zero_without_cross_shot_attention():
    from train.export import random_model
    from train.memory_loss import measure, probe_scenes
    from train.model import make_config

    cfg = make_config("tiny")
    model = random_model(cfg, 3)
    scenes = probe_scenes(6, 2, 2)
    assert all(any(a == 0 and b == 1 for _, a, b, _c in recurrences(s)) for s in scenes)
    off = measure(model, cfg, scenes, [0.5], mode="shot")[0]
    assert off["fg_gain"][0] == 0.0 and off["bg_gain"][0] == 0.0
    on = measure(model, cfg, scenes, [0.5], per_scene=True)[0]
    assert on["fg_gain"][0] != 0.0 and on["fg_clean"][0] > 0
    from train.memory_loss import paired_gain

    assert paired_gain(on, on) == [0.0, 0.0, 0.0]
    twice = {**on, "fg_gain_scenes": [2 * g for g in on["fg_gain_scenes"]]}
    assert paired_gain(on, twice)[0] == pytest.approx(on["fg_gain"][0], abs=1e-5)
