import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from train import checkpoint
from train.train import main, parse_schedule, resolve_schedule, stage_at, stage_fractions, steps_for_budget

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
    "4",
    "--batch-size",
    "2",
    "--log-every",
    "1",
]


def losses(logs):
    return [r["loss"] for r in logs if "loss" in r]


def test_schedule():
    st = parse_schedule("dense@10,8x6@20,1x4")
    assert st == [("dense", 0, 0, 10), ("moc", 8, 6, 20), ("moc", 1, 4, None)]
    assert stage_at(st, 0)[0] == 0 and stage_at(st, 10)[0] == 1 and stage_at(st, 10**6)[0] == 2
    for bad in ("dense,1x4@5", "0x4", "dense@0.5,1x4@20", "dense@1.5,1x4", "dense@0.6,2x2@0.4,1x1"):
        with pytest.raises(ValueError):
            parse_schedule(bad)
    frac = parse_schedule("dense@0.4,8x2@0.5,1x4")
    assert resolve_schedule(frac, 1000) == [("dense", 0, 0, 400), ("moc", 8, 2, 500), ("moc", 1, 4, None)]
    assert stage_fractions(frac, 1000) == pytest.approx([0.4, 0.1, 0.5])
    times = {("dense", 0, 0): 0.1, ("moc", 8, 2): 0.2, ("moc", 1, 4): 0.3}
    assert steps_for_budget(frac, times, 100.0) == int(100 / (0.04 + 0.02 + 0.15))


def test_cpu_smoke_two_steps(tmp_path):
    logs = main(TINY + ["--steps", "2", "--out", str(tmp_path), "--schedule", "dense@1,2x2"])
    assert [r["mode"] for r in logs if "loss" in r] == ["dense", "moc"]
    assert logs[-1]["step"] == 2 and checkpoint.load(str(tmp_path))["step"] == 2
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "end"


def test_loss_decreases_on_a_fixed_batch(tmp_path):
    logs = main(
        TINY
        + [
            "--steps",
            "10",
            "--fixed-batch",
            "--lr",
            "3e-3",
            "--warmup",
            "1",
            "--caption-dropout",
            "0",
            "--schedule",
            "dense@4,2x2",
            "--drop-off",
            "0",
            "--drop-in",
            "0",
            "--out",
            str(tmp_path),
            "--ckpt-every",
            "0",
        ]
    )
    l = losses(logs)
    assert len(l) == 10 and l[-1] < 0.93 * l[0], l
    assert sum(b < a for a, b in zip(l, l[1:])) >= 7, l


def _weights(path):
    state = checkpoint.load(str(path))
    return state["step"], state["model"], state["ema"]


@pytest.mark.parametrize("extra", [[], ["--shot-lengths", "2,4,6"]], ids=["uniform", "shot-lengths"])
def test_resume_is_identical_to_an_uninterrupted_run(tmp_path, extra):
    """A run stopped by --time-limit and resumed with the same command ends on exactly the
    weights, EMA and optimiser state of a run that never stopped (data, noise and the shot
    lengths depend on the step only), also when --steps auto chose the run's length."""
    args = TINY + extra + ["--schedule", "dense@2,1x1", "--ckpt-every", "0", "--steps", "5"]
    stopped = main(args + ["--out", str(tmp_path / "a"), "--time-limit", "1e-9", "--resume"])
    assert stopped[-1]["stopped_early"] and stopped[-1]["step"] == 1
    resumed = main(args + ["--out", str(tmp_path / "a"), "--time-limit", "1e-9", "--resume"])
    assert [r["step"] for r in resumed if "loss" in r] == [2] and resumed[-1]["stopped_early"]
    resumed = main(args + ["--out", str(tmp_path / "a"), "--resume"])
    assert [r["step"] for r in resumed if "loss" in r] == [3, 4, 5] and not resumed[-1]["stopped_early"]
    fresh = main(args + ["--out", str(tmp_path / "b")])
    (sa, ma, ea), (sb, mb, eb) = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert sa == sb == 5
    assert all(torch.equal(ma[n], mb[n]) for n in mb), "weights differ after resume"
    assert all(torch.equal(x, y) for x, y in zip(ea, eb)), "EMA differs after resume"
    assert losses(stopped + resumed) != [] and losses(fresh)[2:] == [r["loss"] for r in resumed if "loss" in r]


def test_auto_steps_and_compact_carry(tmp_path):
    args = TINY + [
        "--schedule",
        "dense@0.5,1x1",
        "--ckpt-every",
        "0",
        "--steps",
        "auto",
        "--budget",
        "1000",
        "--calib-steps",
        "1",
        "--carry",
        str(tmp_path / "carry"),
    ]
    first = main(args + ["--out", str(tmp_path / "a"), "--time-limit", "1e-9", "--resume"])
    cal = [r for r in first if r.get("event") == "calibrate"]
    assert len(cal) == 1 and set(cal[0]["sec_per_step"]) == {"dense:0x0", "moc:1x1"}
    assert first[-1]["steps"] == cal[0]["steps"] > 5 and first[-1]["stopped_early"] and first[-1]["step"] == 1
    full, carried = checkpoint.load(str(tmp_path / "a")), checkpoint.load(str(tmp_path / "carry"))
    assert carried["opt"] is None and full["opt"] is not None and carried["args"]["steps"] == first[-1]["steps"]
    assert all(torch.equal(full["model"][n], carried["model"][n]) for n in full["model"])
    for e, c, p in zip(full["ema"], carried["ema"], full["model"].values()):
        assert (e - c).abs().max() <= (e - p).abs().max() / 128 + 1e-12
    sizes = [os.path.getsize(tmp_path / d / f) for d in ("a", "carry") for f in ("ckpt.pt.000",)]
    assert sizes[1] < 0.5 * sizes[0]
    # a cold machine: <out> is empty, the carried checkpoint resumes the same schedule
    again = main(
        args
        + ["--out", str(tmp_path / "b"), "--resume", "--resume-from", str(tmp_path / "carry"), "--time-limit", "1e-9"]
    )
    start = [r for r in again if r.get("event") is None and "loss" in r]
    assert [r["step"] for r in start] == [2] and again[-1]["steps"] == first[-1]["steps"]
    assert not [r for r in again if r.get("event") == "calibrate"]
    assert json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[0])["optimizer_state"] == "fresh"


def test_checkpoint_parts(tmp_path):
    state = {"step": 7, "w": torch.arange(100000, dtype=torch.float32)}
    checkpoint.save(str(tmp_path), state, part_mb=0.1)
    assert len([f for f in os.listdir(tmp_path) if f.startswith("ckpt.pt.")]) == 4
    assert torch.equal(checkpoint.load(str(tmp_path))["w"], state["w"])
    checkpoint.save(str(tmp_path), {"step": 8}, part_mb=0.1)
    assert [f for f in os.listdir(tmp_path) if f.startswith("ckpt.pt.")] == ["ckpt.pt.000"]


def _ddp_worker(rank, world, port, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    logs = main(
        TINY
        + [
            "--steps",
            "8",
            "--fixed-batch",
            "--lr",
            "3e-3",
            "--warmup",
            "1",
            "--caption-dropout",
            "0",
            "--schedule",
            "dense@3,2x2",
            "--out",
            out,
            "--ckpt-every",
            "0",
        ]
    )
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(logs, f)
    torch.distributed.destroy_process_group()


def test_ddp_gloo_two_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0[-1]["param_checksum"] == r1[-1]["param_checksum"], "ranks hold the same weights"
    assert losses(r0) == losses(r1), "logged loss is the all-reduced mean"
    assert losses(r0)[-1] < losses(r0)[0]
    assert checkpoint.load(str(tmp_path))["step"] == 8


def test_init_from_an_exported_model(tmp_path):
    """--init-from starts step 0 from an exported folder: at lr 0 the weights and the EMA stay
    exactly the export's; a folder of another config is refused with one line."""
    from train.export import export_model, load_exported, random_model
    from train.model import make_config

    cfg = make_config("tiny")
    export_model(random_model(cfg, 5), cfg, str(tmp_path / "m"), "m", {"step": 3})
    logs = main(
        TINY
        + [
            "--steps",
            "1",
            "--lr",
            "0",
            "--warmup",
            "1",
            "--schedule",
            "dense@1,2x2",
            "--init-from",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "run"),
        ]
    )
    start = next(r for r in logs if r.get("event") == "start")
    assert start["init_from"] == str(tmp_path / "m") and start["step"] == 0
    exported = load_exported(str(tmp_path / "m"))[0].state_dict()
    step, model, ema = _weights(tmp_path / "run")
    assert step == 1 and all(torch.equal(model[n], exported[n]) for n in exported)
    assert all(torch.equal(e, p) for e, p in zip(ema, exported.values()))
    with pytest.raises(SystemExit, match="config differs"):
        main(
            TINY + ["--dim", "48", "--steps", "1", "--init-from", str(tmp_path / "m"), "--out", str(tmp_path / "other")]
        )
    # --causal-text may start from a model trained without it; the checkpoint records it
    logs = main(
        TINY
        + [
            "--steps",
            "1",
            "--lr",
            "0",
            "--warmup",
            "1",
            "--schedule",
            "2x2",
            "--causal-text",
            "--init-from",
            str(tmp_path / "m"),
            "--out",
            str(tmp_path / "causal"),
        ]
    )
    assert next(r for r in logs if r.get("event") == "start")["config"]["causal_text"] is True
    assert checkpoint.load(str(tmp_path / "causal"))["config"]["causal_text"] is True


def test_character_mask_covers_the_characters_and_grows_one_pixel():
    from train.data import WorldDataset
    from train.render import render_shot

    ds = WorldDataset(0, 3, 4, 16, 24, masks=True)
    video, text, mask = ds[0]
    assert mask.shape == video.shape[:3] and mask.dtype == torch.uint8
    scene = ds.scene(0)
    drawn = torch.cat(
        [
            torch.from_numpy(sum(v.astype("uint8") for v in vis.values()) > 0)
            if vis
            else torch.zeros(f.shape[:3], dtype=torch.bool)
            for f, vis in (render_shot(scene, i, 16, masks=True) for i in range(3))
        ]
    )
    assert drawn.any(), "scene 0 should show a character"
    m = mask.bool()
    assert m[drawn].all() and m.sum() > drawn.sum() and not m.all()
    plain = WorldDataset(0, 3, 4, 16, 24)[0]
    assert len(plain) == 2 and torch.equal(plain[0], video) and torch.equal(plain[1], text)


def test_fg_weight_scales_the_characters_share_of_the_loss():
    from argparse import Namespace
    from train.model import MoCDiT, make_config
    from train.train import flow_loss

    torch.manual_seed(0)
    model = MoCDiT(make_config("tiny"))
    x0 = torch.rand(2, 6, 3, 16, 16) * 2 - 1
    text = torch.randint(1, 10, (2, 4, 24))
    args = Namespace(
        caption_dropout=0.0, t_regimes=[1.0, 0.0, 0.0], amp="none", backend="plain", q_tile=1024, attn_checkpoint=0
    )
    stage = ("dense", 0, 0, None)

    def loss(fg):
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            return float(flow_loss(model, x0, text, (2, 2, 2), stage, args, gen, fg=fg, fg_weight=3.0))

    base = loss(None)
    assert loss(torch.zeros(2, 6, 16, 16)) == pytest.approx(base, rel=1e-6)
    assert loss(torch.ones(2, 6, 16, 16)) == pytest.approx(4 * base, rel=1e-5)
    half = torch.zeros(2, 6, 16, 16)
    half[..., :8] = 1
    assert base < loss(half) < 4 * base


def test_fg_weight_run_trains_and_decays(tmp_path):
    logs = main(
        TINY
        + [
            "--steps",
            "6",
            "--fixed-batch",
            "--lr",
            "3e-3",
            "--warmup",
            "1",
            "--fg-weight",
            "4",
            "--fg-decay",
            "linear",
            "--caption-dropout",
            "0",
            "--schedule",
            "dense@3,2x2",
            "--drop-off",
            "0",
            "--drop-in",
            "0",
            "--out",
            str(tmp_path),
            "--ckpt-every",
            "0",
        ]
    )
    l = losses(logs)
    assert len(l) == 6 and l[-1] < l[0], l
    assert [r["fg_weight"] for r in logs if "loss" in r] == pytest.approx([4 * (1 - s / 6) for s in range(6)])


@pytest.mark.parametrize("extra,frames", [([], "2+2"), (["--shot-lengths", "1,2,3"], "1+3")], ids=["uniform", "mixed"])
def test_bench_step_times_both_stages(extra, frames, capsys):
    """train.bench_step (the trainer's step timer) runs a dense and a MoC stage end to end; with
    --shot-lengths on a batch of the first mixed tuple ((1, 3) of (1, 3), (2, 2), (3, 1))."""
    from train import bench_step

    ms = bench_step.main(
        ["--device", "cpu", "--config", "tiny", "--batch-size", "1", "--amp", "none", "--shots", "2", "--frames", "2"]
        + extra
    )
    assert set(ms) == {"dense", "moc"} and all(v > 0 for v in ms.values())
    assert f"frames {frames}," in capsys.readouterr().out
