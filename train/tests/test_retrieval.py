"""train/eval/retrieval.py: the cases it picks, and that its score reaches 1 for routing that
follows the character, 0.5 for routing blind to it, and 0 for routing that avoids it."""
import numpy as np
import pytest
import torch

from train.eval.generate import Loaded
from train.eval.retrieval import COVER, _patch_cover, cases, retrieval_probe
from train.eval.run import held_out_scenes
from train.export import random_model
from train.model import MoCDiT, make_config
from train.render import render_shot
from train.world import Actor, Scene

torch.set_num_threads(2)


def test_cases_need_an_earlier_shot_with_and_one_without_the_character():
    scenes = held_out_scenes(40, seed=0, shots=4, frames=2)
    found = 0
    for sc in scenes:
        present = [{a.char for a in sh.actors} for sh in sc.shots]
        got = cases(sc)
        for s, c, with_c in got:
            assert c in present[s] and with_c == [e for e in range(s) if c in present[e]]
            assert 0 < len(with_c) < s
        want = sum(1 for s in range(1, 4) for c in present[s] if 0 < sum(c in present[e] for e in range(s)) < s)
        assert len(got) == want
        found += len(got)
    assert found > 10


class Routed(MoCDiT):
    """A tiny model whose routing is dictated by `policy(scene, layout, token) -> [chunks]` (the
    probe only reads the trace, so the network itself does not matter)."""

    def __init__(self, cfg, scenes, frames, policy):
        super().__init__(cfg)
        self.scenes, self.frames, self.policy = scenes, frames, policy

    def forward(
        self,
        video,
        t_shot,
        text,
        frames=None,
        mode="dense",
        chunk_frames=None,
        top_k=None,
        causal=None,
        trace=None,
        **kw,
    ):
        B = video.shape[0]
        lay = self.layout(frames, chunk_frames)
        N, H = lay.n_tokens, self.cfg.heads
        table = torch.full((B, H, N, top_k), -1, dtype=torch.long)
        for b in range(B):
            sc = self.scenes[b]
            for i in range(N):
                for slot, r in enumerate(self.policy(sc, lay, i)):
                    table[b, :, i, slot] = r
        for layer in range(self.cfg.depth):
            trace[f"blocks.{layer}.routed"] = table
        return video


def _first_chunk_of(lay, shot):
    return int(np.nonzero((lay.chunk_shot == shot) & (lay.chunk_kind == 1))[0][0])


def _run(policy, n_scenes=12):
    cfg = make_config("tiny")
    scenes = [sc for sc in held_out_scenes(60, seed=0, shots=4, frames=2) if cases(sc)][:n_scenes]
    model = Routed(cfg, scenes, (2, 2, 2, 2), policy)
    model.load_state_dict(random_model(cfg, 0).state_dict())
    lm = Loaded(model.eval(), cfg, {})
    return retrieval_probe(
        lm, scenes, device=torch.device("cpu"), chunk_frames=1, top_k=3, causal=True, batch=len(scenes)
    )


def _token_place(sc, lay, i, cfg=make_config("tiny")):
    """(shot, frame in shot, patch) of video token i, None for text."""
    if i < lay.n_text:
        return None
    v = i - lay.n_text
    P = (cfg.image_size // cfg.patch_size) ** 2
    f, patch = divmod(v, P)
    start = np.concatenate([[0], np.cumsum(lay.frames)])
    s = int(np.searchsorted(start, f, side="right") - 1)
    return s, f - start[s], patch


def _follow(avoid: bool):
    """Character patches route to the earlier shots with (avoid: without) their character;
    every other patch routes to every earlier shot alike."""
    cfg = make_config("tiny")

    def policy(sc, lay, i):
        place = _token_place(sc, lay, i)
        if place is None or place[0] == 0:
            return []
        s, f, patch = place
        _, vis = render_shot(sc, s, cfg.image_size, masks=True)
        on = [c for c, m in vis.items() if _patch_cover(m, cfg.patch_size)[f, patch] >= COVER]
        if not on:
            return [_first_chunk_of(lay, e) for e in range(s)]
        with_c = [e for e in range(s) if on[0] in {a.char for a in sc.shots[e].actors}]
        pick = [e for e in range(s) if (e in with_c) != avoid]
        return [_first_chunk_of(lay, e) for e in pick]

    return policy


def test_routing_that_follows_the_character_scores_one_and_avoiding_it_zero():
    good = _run(_follow(avoid=False))
    assert good["n"] > 5 and good["score"] > 0.9, good
    assert good["char_share"] > good["background_share"]
    bad = _run(_follow(avoid=True))
    assert bad["n"] > 5 and bad["score"] < 0.1, bad


def test_routing_blind_to_the_character_scores_one_half():
    def previous_shot(sc, lay, i):
        place = _token_place(sc, lay, i)
        return [] if place is None or place[0] == 0 else [_first_chunk_of(lay, place[0] - 1)]

    r = _run(previous_shot)
    assert r["n"] > 5 and r["score"] == pytest.approx(0.5), r
    assert r["char_share"] == pytest.approx(r["background_share"])


class Attending(Routed):
    """A tiny model whose *attention* follows `policy`: keys are one-hot in their chunk id, and a
    query is a large multiple of the sum of its policy's chunks, so its softmax spreads evenly
    over those chunks' keys (a query with an empty policy attends to every key alike)."""

    def forward(
        self,
        video,
        t_shot,
        text,
        frames=None,
        mode="dense",
        chunk_frames=None,
        top_k=None,
        causal=None,
        trace=None,
        **kw,
    ):
        assert mode == "dense", "the attention measure asks dense attention"
        B = video.shape[0]
        lay = self.layout(frames, chunk_frames)
        N, H, D = lay.n_tokens, self.cfg.heads, self.cfg.head_dim
        assert len(lay.chunk_shot) <= D
        k = torch.zeros(B, H, N, D)
        k[:, :, torch.arange(N), torch.as_tensor(lay.token_chunk)] = 1.0
        q = torch.zeros(B, H, N, D)
        for b in range(B):
            for i in range(N):
                for r in self.policy(self.scenes[b], lay, i):
                    q[b, :, i, r] = 60.0
        for layer in range(self.cfg.depth):
            trace[f"blocks.{layer}.attn.q"], trace[f"blocks.{layer}.attn.k"] = q, k
        return video


def test_attention_measure_follows_where_attention_goes():
    cfg = make_config("tiny")
    scenes = [sc for sc in held_out_scenes(60, seed=0, shots=4, frames=2) if cases(sc)][:12]
    for avoid, check in (
        (False, lambda r: r["score"] > 0.9 and r["char_share"] > r["background_share"]),
        (True, lambda r: r["score"] < 0.1),
    ):
        model = Attending(cfg, scenes, (2, 2, 2, 2), _follow(avoid))
        lm = Loaded(model.eval(), cfg, {})
        r = retrieval_probe(
            lm,
            scenes,
            device=torch.device("cpu"),
            chunk_frames=1,
            top_k=3,
            causal=True,
            batch=len(scenes),
            measure="attention",
        )
        assert r["measure"] == "attention" and r["n"] > 5 and check(r), r
    with pytest.raises(ValueError, match="measure"):
        retrieval_probe(lm, scenes, device=torch.device("cpu"), chunk_frames=1, top_k=3, causal=True, measure="scores")


def test_the_probe_runs_on_a_real_tiny_model():
    cfg = make_config("tiny")
    scenes = [sc for sc in held_out_scenes(30, seed=0, shots=4, frames=2) if cases(sc)][:6]
    lm = Loaded(random_model(cfg, 0).eval(), cfg, {})
    r = retrieval_probe(lm, scenes, device=torch.device("cpu"), chunk_frames=1, top_k=2, causal=True)
    assert r["n"] > 0 and 0 <= r["score"] <= 1 and 0 < r["chance_share"] < 1


def test_command_line_runs_the_probe_per_model_and_t():
    from train.eval import retrieval

    out = retrieval.main(
        [
            "--ckpt",
            "random:tiny",
            "--storyboards",
            "2",
            "--t",
            "0.3,0.7",
            "--device",
            "cpu",
            "--measure",
            "routes,attention",
        ]
    )
    assert [(r["measure"], r["t"]) for r in out] == [
        ("routes", 0.3),
        ("routes", 0.7),
        ("attention", 0.3),
        ("attention", 0.7),
    ]
    assert all(r["model"] == "random:tiny" and r["n"] >= 1 and 0.0 <= r["score"] <= 1.0 for r in out)
