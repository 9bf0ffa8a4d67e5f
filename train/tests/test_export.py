import json
import os

import numpy as np
import pytest
import torch

from train import checkpoint, safetensors_io
from train.export import export_model, load_exported, main, random_model
from train.model import MoCDiT, make_config
from train.vocab import Vocab

torch.set_num_threads(2)


def test_export_round_trips_fp16_bit_exactly(tmp_path):
    cfg = make_config("tiny")
    model = random_model(cfg, seed=3)
    out = str(tmp_path / "m")
    manifest = export_model(model, cfg, out, "m", {"step": 7})
    assert set(manifest["files"]) == {"config.json", "vocab.json", "model.safetensors"}
    tensors, meta = safetensors_io.load(os.path.join(out, "model.safetensors"))
    assert set(tensors) == set(model.state_dict())
    assert all(a.dtype == np.float16 for a in tensors.values())
    assert meta["format"] == "moc-dit"
    back, cfg2, cfg_json = load_exported(out)
    assert cfg2 == cfg and cfg_json["name"] == "m" and cfg_json["step"] == 7 and cfg_json["fps"] == 8
    assert cfg_json["format"] == "moc-dit" and cfg_json["formatVersion"] == 1
    for k, v in model.state_dict().items():
        h = v.numpy().astype(np.float16)
        assert np.array_equal(back.state_dict()[k].numpy().astype(np.float16).view(np.uint16), h.view(np.uint16)), k
        assert np.array_equal(back.state_dict()[k].numpy(), h.astype(np.float32)), k
    # exporting the reloaded model again gives the same bytes
    export_model(back, cfg2, str(tmp_path / "m2"), "m", {"step": 7})
    a = open(os.path.join(out, "model.safetensors"), "rb").read()
    b = open(str(tmp_path / "m2" / "model.safetensors"), "rb").read()
    assert a == b
    with open(os.path.join(out, "vocab.json")) as f:
        assert json.load(f)["words"] == Vocab().words


def test_load_refuses_a_corrupt_file(tmp_path):
    cfg = make_config("tiny")
    out = str(tmp_path / "m")
    export_model(random_model(cfg, 0), cfg, out, "m")
    path = os.path.join(out, "model.safetensors")
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_exported(out)


def test_small_config_fits_the_budget(tmp_path):
    cfg = make_config("small")
    m = export_model(MoCDiT(cfg), cfg, str(tmp_path / "s"), "s")
    assert m["files"]["model.safetensors"]["bytes"] <= 16 * 2**20


def test_cli_from_checkpoint_with_ema_and_register(tmp_path):
    cfg = make_config("tiny")
    model = random_model(cfg, 1)
    ema = [p.detach().clone() * 0.5 for p in model.parameters()]
    ck = str(tmp_path / "ck")
    checkpoint.save(
        ck,
        {
            "step": 42,
            "model": model.state_dict(),
            "ema": ema,
            "config": cfg.to_dict(),
            "args": {"shots": 3, "frames": 5},
        },
    )
    index = tmp_path / "public" / "models" / "index.json"
    out = tmp_path / "public" / "models" / "t"
    main(["--ckpt", ck, "--ema", "--name", "t", "--out", str(out), "--register", str(index), "--default"])
    back, _, meta = load_exported(str(out))
    assert meta["step"] == 42 and meta["ema"] is True
    assert (meta["train_shots"], meta["train_frames"]) == (3, 5)  # the studio's shot-length note
    assert "train_frames_min" not in meta
    first = next(back.parameters())
    assert torch.equal(first, ema[0].half().float())
    entry = json.loads(index.read_text())["models"][0]
    assert entry["path"] == "models/t" and entry["default"] is True and entry["name"] == "t"


def test_cli_random_init_with_overrides(tmp_path):
    out = str(tmp_path / "r")
    main(["--random-init", "5", "--config", "tiny", "--dim", "64", "--heads", "2", "--name", "r", "--out", out])
    _, cfg, _ = load_exported(out)
    assert cfg.dim == 64 and cfg.head_dim == 32


def test_committed_fixtures_are_current(tmp_path):
    """tests/fixtures/v<VERSION> is what `python3 -m train.fixtures` writes today."""
    from train import fixtures

    root = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", f"v{fixtures.VERSION}")
    with open(os.path.join(root, "meta.json")) as f:
        meta = json.load(f)
    assert meta["version"] == fixtures.VERSION, f"regenerate with: {fixtures.COMMAND}"
    fresh = fixtures.write(str(tmp_path), seeds=[meta["seed"]])
    assert fresh["routingMinGap"] == pytest.approx(meta["routingMinGap"], rel=1e-3)
    for name in ("fixture.safetensors", "route-views.safetensors"):
        got, _ = safetensors_io.load(str(tmp_path / f"v{fixtures.VERSION}" / name))
        want, _ = safetensors_io.load(os.path.join(root, name))
        assert set(got) == set(want), name
        for k in want:
            if want[k].dtype == np.int32:
                assert np.array_equal(got[k], want[k]), k
            else:
                np.testing.assert_allclose(
                    got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=f"{k}: regenerate with {fixtures.COMMAND}"
                )
    for f in ("model.safetensors", "config.json", "vocab.json"):
        a = open(os.path.join(root, "model", f), "rb").read()
        assert a == open(str(tmp_path / f"v{fixtures.VERSION}" / "model" / f), "rb").read(), f


def test_trained_shape_records_the_shot_lengths_range():
    from train.export import trained_shape

    assert trained_shape({}) == {}
    assert trained_shape({"shots": 4, "frames": 8, "shot_lengths": None}) == {
        "train_shots": 4,
        "train_frames": 8,
        "world_version": 1,
    }
    assert trained_shape({"shots": 4, "frames": 8, "shot_lengths": "12,4,8"}) == {
        "train_shots": 4,
        "train_frames": 8,
        "world_version": 1,
        "train_frames_min": 4,
        "train_frames_max": 12,
    }
    assert trained_shape({"shots": 4, "frames": 8, "world": "v2", "oracle_captions": True}) == {
        "train_shots": 4,
        "train_frames": 8,
        "world_version": 2,
        "oracle_captions": True,
    }


def test_route_view_in_config_json(tmp_path):
    """route_view reaches config.json (absent for the default "rotary", so older folders read the
    same), and --route-view exports a model with another view over the same weights."""
    out = str(tmp_path / "r")
    main(["--random-init", "5", "--config", "tiny", "--name", "r", "--out", out])
    with open(os.path.join(out, "config.json")) as f:
        assert "route_view" not in json.load(f)
    assert load_exported(out)[1].route_view == "rotary"
    main(["--random-init", "5", "--config", "tiny", "--route-view", "spatial", "--name", "s", "--out", out + "s"])
    with open(os.path.join(out + "s", "config.json")) as f:
        assert json.load(f)["route_view"] == "spatial"
    m, cfg, _ = load_exported(out + "s")
    assert cfg.route_view == "spatial"
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), load_exported(out)[0].state_dict().values()))


def test_causal_text_is_written_only_when_on(tmp_path):
    for on in (True, False):
        cfg = make_config("tiny", causal_text=on)
        out = str(tmp_path / f"m{on}")
        export_model(random_model(cfg, 0), cfg, out, "t")
        written = json.load(open(os.path.join(out, "config.json")))
        assert written.get("causal_text", "absent") == (True if on else "absent")
        assert load_exported(out)[1].causal_text is on
