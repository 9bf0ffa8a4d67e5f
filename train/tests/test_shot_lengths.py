"""--shot-lengths: per-step tuples of shot lengths (data.ShotLengths), the data rendered with
them, and the trainer using and logging them."""
import itertools
from collections import Counter

import numpy as np
import pytest
import torch

from train.data import (
    ShotLengths,
    StepBatches,
    WorldDataset,
    batch as make_batch,
    character_mask,
    scene_seed,
    shot_length_tuples,
)
from train.render import render_shot
from train.train import main
from train.world import sample_scene


def test_tuples_come_from_the_set_and_keep_the_total():
    lengths = ShotLengths(4, 8, [12, 4, 8, 8], seed=0)
    brute = sorted(t for t in itertools.product((4, 8, 12), repeat=4) if sum(t) == 32)
    assert lengths.tuples == brute and len(brute) == 19  # 1 of 8,8,8,8 + 6 of 4,4,12,12 + 12 of 4,8,8,12
    drawn = Counter(lengths.frames_at(s) for s in range(3800))
    assert set(drawn) == set(brute), "every tuple is drawn"
    assert all(set(t) <= {4, 8, 12} and sum(t) == 32 for t in drawn)
    assert min(drawn.values()) > 130 and max(drawn.values()) < 270, drawn  # uniform: 200 each
    assert shot_length_tuples([1, 2, 3], 2, 4) == [(1, 3), (2, 2), (3, 1)]


def test_draws_are_a_function_of_seed_and_step():
    a, b, c = (ShotLengths(4, 8, [4, 8, 12], seed=s) for s in (3, 3, 4))
    steps = [0, 1, 2, 57, 10**6]
    assert [a.frames_at(s) for s in steps] == [b.frames_at(s) for s in reversed(steps)][::-1]
    assert [a.frames_at(s) for s in range(40)] != [c.frames_at(s) for s in range(40)]
    off = ShotLengths(4, 8)
    assert off.tuples == [(8, 8, 8, 8)] and off.frames_at(12345) == (8, 8, 8, 8)


def test_every_item_of_a_step_has_the_steps_tuple_on_any_rank_split():
    """Batch 64 on one rank and 32 on each of two ranks: the same items per step, all with the
    step's tuple (the dataset maps index -> step with the global batch)."""
    lengths = ShotLengths(4, 8, [4, 8, 12], seed=5)
    ds = WorldDataset(5, 4, 8, 16, 24, lengths=lengths, step_items=64)
    for step in range(3):
        one = next(iter(StepBatches(step, step + 1, 64, 0, 1)))
        two = [next(iter(StepBatches(step, step + 1, 32, r, 2))) for r in (0, 1)]
        assert sorted(two[0] + two[1]) == one
        for i in one[::9] + [one[-1]] + two[1][:1]:
            assert tuple(s.frames for s in ds.scene(i).shots) == lengths.frames_at(step)
    assert len({lengths.frames_at(s) for s in range(3)}) > 1, "pick a seed whose steps differ"


def test_rendered_batch_has_the_steps_shot_lengths():
    lengths = ShotLengths(3, 4, [2, 4, 6], seed=1)
    ds = WorldDataset(1, 3, 4, 16, 24, masks=True, lengths=lengths, step_items=2)
    step = next(s for s in range(20) if len(set(lengths.frames_at(s))) > 1)
    frames = lengths.frames_at(step)
    indices = next(iter(StepBatches(step, step + 1, 2)))
    video, text, mask = make_batch(ds, indices)
    assert video.shape == (2, 12, 16, 16, 3) and text.shape == (2, 4, 24) and mask.shape == (2, 12, 16, 16)
    for b, i in enumerate(indices):
        scene = sample_scene(scene_seed(1, i), shots=3, frames=list(frames))
        shots = [render_shot(scene, k, 16, masks=True) for k in range(3)]
        assert [len(f) for f, _ in shots] == list(frames)
        assert torch.equal(video[b], torch.from_numpy(np.concatenate([f for f, _ in shots])))
        want = np.concatenate([character_mask(vis, 16, len(f)) for f, vis in shots])
        assert torch.equal(mask[b], torch.from_numpy(want))


def test_impossible_or_malformed_sets_stop_at_startup(tmp_path):
    with pytest.raises(ValueError, match="no 4 shot lengths from"):
        ShotLengths(4, 8, [3, 5])  # 3a + 5b = 32 with a + b = 4: none
    base = ["--config", "tiny", "--device", "cpu", "--workers", "0", "--steps", "1", "--out", str(tmp_path)]
    for bad, msg in (("3,5", "sum to 4 x 8 = 32 frames"), ("4,x", "comma-separated"), ("0,8", ">= 1")):
        with pytest.raises(SystemExit, match=msg) as e:
            main(base + ["--shots", "4", "--frames", "8", "--shot-lengths", bad])
        assert "\n" not in str(e.value)


def test_cpu_run_trains_on_and_logs_each_steps_tuple(tmp_path):
    logs = main(
        [
            "--config",
            "tiny",
            "--device",
            "cpu",
            "--workers",
            "2",
            "--threads",
            "1",
            "--shots",
            "2",
            "--frames",
            "2",
            "--shot-lengths",
            "1,2,3",
            "--batch-size",
            "2",
            "--steps",
            "3",
            "--log-every",
            "1",
            "--schedule",
            "dense@1,1x1",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    start = next(r for r in logs if r.get("event") == "start")
    assert start["shot_length_tuples"] == 3 and start["args"]["shot_lengths"] == "1,2,3"
    steps = [r for r in logs if "loss" in r]
    want = [list(ShotLengths(2, 2, [1, 2, 3], seed=2).frames_at(s)) for s in range(3)]
    assert [r["frames"] for r in steps] == want and any(f != [2, 2] for f in want), want
    assert all(np.isfinite(r["loss"]) for r in steps) and logs[-1]["step"] == 3
