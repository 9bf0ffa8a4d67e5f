import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from train import checkpoint
from train.train import main, parse_schedule, stage_at

TINY = ["--config", "tiny", "--device", "cpu", "--workers", "0", "--threads", "1", "--shots", "3",
        "--frames", "4", "--batch-size", "2", "--log-every", "1"]


def losses(logs):
    return [r["loss"] for r in logs if "loss" in r]


def test_schedule():
    st = parse_schedule("dense@10,8x6@20,1x4")
    assert st == [("dense", 0, 0, 10), ("moc", 8, 6, 20), ("moc", 1, 4, None)]
    assert stage_at(st, 0)[0] == 0 and stage_at(st, 10)[0] == 1 and stage_at(st, 10 ** 6)[0] == 2
    with pytest.raises(ValueError):
        parse_schedule("dense,1x4@5")
    with pytest.raises(ValueError):
        parse_schedule("0x4")


def test_cpu_smoke_two_steps(tmp_path):
    logs = main(TINY + ["--steps", "2", "--out", str(tmp_path), "--schedule", "dense@1,2x2"])
    assert [r["mode"] for r in logs if "loss" in r] == ["dense", "moc"]
    assert logs[-1]["step"] == 2 and checkpoint.load(str(tmp_path))["step"] == 2
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "end"


def test_loss_decreases_on_a_fixed_batch(tmp_path):
    logs = main(TINY + ["--steps", "10", "--fixed-batch", "--lr", "3e-3", "--warmup", "1",
                        "--caption-dropout", "0", "--schedule", "dense@4,2x2", "--drop-off", "0",
                        "--drop-in", "0", "--out", str(tmp_path), "--ckpt-every", "0"])
    l = losses(logs)
    assert len(l) == 10 and l[-1] < 0.93 * l[0], l
    assert sum(b < a for a, b in zip(l, l[1:])) >= 7, l


def test_resume_continues(tmp_path):
    args = TINY + ["--out", str(tmp_path), "--schedule", "dense@2,1x1", "--ckpt-every", "0"]
    first = main(args + ["--steps", "3"])
    second = main(args + ["--steps", "5", "--resume"])
    assert [r["step"] for r in second if "loss" in r] == [4, 5]
    assert checkpoint.load(str(tmp_path))["step"] == 5
    # a fresh run to 5 steps lands on the same weights (data and noise depend on the step only)
    fresh = main(TINY + ["--out", str(tmp_path / "fresh"), "--schedule", "dense@2,1x1", "--steps", "5"])
    assert fresh[-1]["param_checksum"] == pytest.approx(second[-1]["param_checksum"], rel=1e-5)
    assert first[-1]["step"] == 3


def test_checkpoint_parts(tmp_path):
    state = {"step": 7, "w": torch.arange(100000, dtype=torch.float32)}
    checkpoint.save(str(tmp_path), state, part_mb=0.1)
    assert len([f for f in os.listdir(tmp_path) if f.startswith("ckpt.pt.")]) == 4
    assert torch.equal(checkpoint.load(str(tmp_path))["w"], state["w"])
    checkpoint.save(str(tmp_path), {"step": 8}, part_mb=0.1)
    assert [f for f in os.listdir(tmp_path) if f.startswith("ckpt.pt.")] == ["ckpt.pt.000"]


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    logs = main(TINY + ["--steps", "8", "--fixed-batch", "--lr", "3e-3", "--warmup", "1",
                        "--caption-dropout", "0", "--schedule", "dense@3,2x2", "--out", out,
                        "--ckpt-every", "0"])
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
