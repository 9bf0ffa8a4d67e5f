"""Checkpoints are read without unpickling arbitrary objects (checkpoint.load_torch)."""
import hashlib
import io
import json
import os

import pytest
import torch

from train import checkpoint
from train.eval import run as eval_run
from train.export import main as export_main, random_model
from train.model import make_config


class Planted:
    """Unpickling this runs a shell command (what a crafted checkpoint would do)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def malicious_state(marker):
    cfg = make_config("tiny")
    model = random_model(cfg, 1)
    return {
        "step": 3,
        "model": model.state_dict(),
        "ema": [],
        "config": cfg.to_dict(),
        "args": {"payload": Planted(marker)},
    }


def write_checkpoint_dir(d, state):
    """A checkpoint folder whose ckpt.json agrees with the parts (the attacker writes both)."""
    os.makedirs(d)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    (d / "ckpt.pt.000").write_bytes(data)
    (d / checkpoint.INDEX).write_text(
        json.dumps(
            {
                "version": 1,
                "step": 3,
                "parts": ["ckpt.pt.000"],
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    )


def one_line_refusal(text):
    assert "\n" not in text and "refusing to load" in text and ("posix.system" in text or "os.system" in text)


def test_checkpoint_folder_with_a_planted_call_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "ran"
    write_checkpoint_dir(tmp_path / "ck", malicious_state(marker))
    with pytest.raises(checkpoint.UnsafeCheckpoint) as e:
        checkpoint.load(str(tmp_path / "ck"))
    one_line_refusal(str(e.value))
    assert not marker.exists()


def test_export_and_eval_refuse_a_planted_torch_file_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    pt = tmp_path / "evil.pt"
    torch.save(malicious_state(marker), str(pt))
    with pytest.raises(SystemExit) as e:
        export_main(["--ckpt", str(pt), "--name", "x", "--out", str(tmp_path / "out")])
    assert str(e.value).startswith("export: ")
    one_line_refusal(str(e.value))
    with pytest.raises(SystemExit) as e:
        eval_run.main(["--ckpt", str(pt), "--out", str(tmp_path / "eval")])
    assert str(e.value).startswith("eval: ")
    one_line_refusal(str(e.value))
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_plain_data_and_every_tensor_dtype_still_load(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {
        "step": 7,
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "bf16": [torch.ones(2, dtype=torch.bfloat16)],
        "f16": torch.ones(2, dtype=torch.float16),
        "i64": torch.arange(3),
        "args": {"lr": 1e-3, "inf": float("inf"), "none": None, "t": (1, 2.5)},
        "view": torch.arange(10.0)[2:5],
    }
    checkpoint.save(str(tmp_path), state)
    back = checkpoint.load(str(tmp_path))
    assert back["args"] == state["args"] and back["opt"]["param_groups"][0]["betas"] == (0.9, 0.95)
    assert torch.equal(back["view"], torch.tensor([2.0, 3.0, 4.0]))
    for k in ("f16", "i64"):
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k])
    assert back["bf16"][0].dtype == torch.bfloat16
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    fresh.load_state_dict(back["opt"])


def test_pickles_naming_a_class_or_a_builtin_and_odd_archives_are_refused(tmp_path):
    import argparse
    import pickle
    import zipfile

    for payload in (
        pickle.dumps(argparse.Namespace(a=1), protocol=2),  # any class (GLOBAL)
        pickle.dumps(argparse.Namespace(a=1), protocol=4),  # STACK_GLOBAL
        b"cbuiltins\neval\n(V1+1\ntR.",  # builtins.eval("1+1")
        b"\x80\x02c",
    ):  # truncated
        with pytest.raises(checkpoint.UnsafeCheckpoint) as e:
            checkpoint.check_pickle(payload, "x")
        assert "\n" not in str(e.value)
    good = io.BytesIO()
    torch.save({"w": torch.ones(2)}, good)
    with zipfile.ZipFile(good) as z:
        entries = [(n, z.read(n)) for n in z.namelist()]
    for extra in (
        ("archive/data.pkl", pickle.dumps(argparse.Namespace())),  # a second copy of data.pkl
        ("archive/constants.pkl", b"."),  # TorchScript
        ("other/data/0", b""),
    ):  # a second root
        odd = io.BytesIO()
        with zipfile.ZipFile(odd, "w") as z:
            for n, b in entries + [extra]:
                z.writestr(n, b)
        with pytest.raises(checkpoint.UnsafeCheckpoint):
            checkpoint.load_torch(odd.getvalue())
    with pytest.raises(checkpoint.UnsafeCheckpoint, match="not a zip-format"):
        checkpoint.load_torch(pickle.dumps({"w": 1}))  # torch < 1.6 format
    assert torch.equal(checkpoint.load_torch(good.getvalue())["w"], torch.ones(2))
