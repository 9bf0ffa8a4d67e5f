"""Export a MoC DiT to the studio's model folder (MODEL.md "Shipped weights").

    python3 -m train.export --ckpt DIR_OR_FILE --config NAME [--ema] --name NAME --out public/models/NAME
    python3 -m train.export --random-init SEED --config tiny --dim 64 --name rand --out /tmp/rand

A model folder holds
    config.json        ModelConfig.to_dict() + {"format": "moc-dit", "formatVersion": 1, "name", "fps", ...}
    vocab.json         Vocab().to_json()
    model.safetensors  every state_dict tensor as F16, names exactly the state_dict names
    manifest.json      {"format": "moc-dit", "formatVersion": 1, "files": {file: {"bytes", "sha256"}}}
`load_exported` reads a folder back (sha256 checked), giving a float32 model whose weights are
the fp16 values exactly: what the studio computes with when it converts fp16 to f32.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import fields
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import checkpoint, safetensors_io
from .data import parse_shot_lengths
from .model import CONFIGS, ROUTE_VIEWS, MoCDiT, ModelConfig, count_parameters, make_config
from .vocab import Vocab

FORMAT = "moc-dit"
FORMAT_VERSION = 1
FPS = 8
MAX_WEIGHT_BYTES = 16 * 2**20
FILES = ("config.json", "vocab.json", "model.safetensors")


def _sha256(path: str) -> Tuple[int, str]:
    with open(path, "rb") as f:
        data = f.read()
    return len(data), hashlib.sha256(data).hexdigest()


def _write_json(path: str, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def fp16_state(model: torch.nn.Module) -> Dict[str, np.ndarray]:
    """state_dict as little-endian float16 numpy arrays (names unchanged)."""
    out = {}
    for name, t in model.state_dict().items():
        a = t.detach().cpu().float().numpy()
        h = a.astype(np.float16)
        if not np.all(np.isfinite(h)):
            raise ValueError(f"tensor {name!r} overflows float16 (max |x| = {np.abs(a).max():.3g})")
        out[name] = h
    return out


def export_model(
    model: MoCDiT,
    cfg: ModelConfig,
    out_dir: str,
    name: str,
    extra_meta: Optional[dict] = None,
    max_bytes: int = MAX_WEIGHT_BYTES,
) -> dict:
    """Writes config.json, vocab.json, model.safetensors (F16) and manifest.json into out_dir.

    extra_meta: more config.json keys (e.g. {"step": 12000, "ema": true, "description": ...,
    "train_shots": 4, "train_frames": 8}: the shot shape of its training, which the studio
    compares shot lengths with).
    Returns the manifest. Raises ValueError when the weights exceed max_bytes or overflow f16.
    """
    vocab = Vocab(oracle=bool((extra_meta or {}).get("oracle_captions")))
    if cfg.vocab_size != len(vocab):
        raise ValueError(f"config vocab_size {cfg.vocab_size} != the vocabulary's {len(vocab)} words")
    os.makedirs(out_dir, exist_ok=True)
    tensors = fp16_state(model)
    params = int(sum(a.size for a in tensors.values()))
    config = {
        **cfg.to_dict(),
        "format": FORMAT,
        "formatVersion": FORMAT_VERSION,
        "name": name,
        "fps": FPS,
        "params": params,
        **(extra_meta or {}),
    }
    _write_json(os.path.join(out_dir, "config.json"), config)
    _write_json(os.path.join(out_dir, "vocab.json"), vocab.to_json())
    st_path = os.path.join(out_dir, "model.safetensors")
    safetensors_io.save(st_path, tensors, {"format": FORMAT, "name": name})
    size = os.path.getsize(st_path)
    if size > max_bytes:
        raise ValueError(f"model.safetensors is {size} bytes, over the limit of {max_bytes}")
    manifest = {"format": FORMAT, "formatVersion": FORMAT_VERSION, "files": {}}
    for f in FILES:
        n, sha = _sha256(os.path.join(out_dir, f))
        manifest["files"][f] = {"bytes": n, "sha256": sha}
    _write_json(os.path.join(out_dir, "manifest.json"), manifest)
    return manifest


def config_from_dict(d: dict) -> ModelConfig:
    """The ModelConfig fields of a config.json (other keys ignored)."""
    names = {f.name for f in fields(ModelConfig)}
    cfg = ModelConfig(**{k: v for k, v in d.items() if k in names})
    cfg.validate()
    return cfg


def load_exported(out_dir: str) -> Tuple[MoCDiT, ModelConfig, dict]:
    """(float32 model with the fp16 weights, config, config.json). Checks the manifest's sha256."""
    with open(os.path.join(out_dir, "manifest.json")) as f:
        manifest = json.load(f)
    for fname, info in manifest["files"].items():
        n, sha = _sha256(os.path.join(out_dir, fname))
        if (n, sha) != (info["bytes"], info["sha256"]):
            raise ValueError(f"{out_dir}/{fname}: size or sha256 differs from manifest.json")
    with open(os.path.join(out_dir, "config.json")) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT or meta.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(f"{out_dir}: not a {FORMAT} v{FORMAT_VERSION} model folder")
    cfg = config_from_dict(meta)
    tensors, _ = safetensors_io.load(os.path.join(out_dir, "model.safetensors"))
    model = MoCDiT(cfg)
    want = model.state_dict()
    if set(tensors) != set(want):
        raise ValueError(
            f"{out_dir}: tensor names differ from the config's model "
            f"(missing {sorted(set(want) - set(tensors))[:3]}, extra {sorted(set(tensors) - set(want))[:3]})"
        )
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in tensors.items()})
    model.eval()
    return model, cfg, meta


def randomize(model: MoCDiT, seed: int, scale: float = 1.0) -> MoCDiT:
    """Fills every weight with seeded random values (adaLN and the final layer included, unlike
    the adaLN-zero init), so every path of the forward pass is exercised: Linear weights
    U(±scale·sqrt(3/fan_in)), biases N(0, 0.1·scale), norm weights 1 + N(0, 0.1), embeddings N(0, 1)."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and name.endswith(".weight") and "embed.weight" not in name and "text_pos" not in name:
                bound = scale * (3.0 / p.shape[1]) ** 0.5
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 * scale)
            elif "norm" in name:
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.1)
            else:  # text_embed, text_pos
                p.copy_(torch.randn(p.shape, generator=g))
    return model


def random_model(cfg: ModelConfig, seed: int, scale: float = 1.0) -> MoCDiT:
    """A seeded random-weight model of any config (for tests and fixtures)."""
    torch.manual_seed(int(seed))
    return randomize(MoCDiT(cfg), seed, scale).eval()


def load_checkpoint_model(
    path: str, config: Optional[str], ema: bool, overrides: Optional[dict] = None
) -> Tuple[MoCDiT, ModelConfig, dict]:
    """A model from a trainer checkpoint: a directory with ckpt.json (checkpoint.py), its
    ckpt.json, or a torch file holding {"model": state_dict, ...} or a bare state_dict."""
    if os.path.isdir(path) or os.path.basename(path) == checkpoint.INDEX:
        d = path if os.path.isdir(path) else os.path.dirname(path)
        state = checkpoint.load(d)
        if state is None:
            raise FileNotFoundError(f"{d}: no {checkpoint.INDEX}")
    else:
        state = checkpoint.load_torch(path)
    if "model" not in state:
        state = {"model": state}
    if state.get("config"):
        cfg = config_from_dict({**state["config"], **{k: v for k, v in (overrides or {}).items() if v is not None}})
        if config is not None:
            named = make_config(config, **(overrides or {}))
            if named != cfg:
                print(
                    f"export: note: the checkpoint's config differs from --config {config}; using the checkpoint's",
                    file=sys.stderr,
                )
    else:
        if config is None:
            raise ValueError("the checkpoint carries no config: pass --config")
        cfg = make_config(config, **(overrides or {}))
    model = MoCDiT(cfg)
    model.load_state_dict(state["model"])
    if ema:
        if not state.get("ema"):
            raise ValueError("--ema: the checkpoint has no EMA weights")
        with torch.no_grad():
            for p, e in zip(model.parameters(), state["ema"]):
                p.copy_(e.to(p.dtype))
    meta = {"step": int(state.get("step", 0)), "ema": bool(ema)}
    meta.update(trained_shape(state.get("args") or {}))
    return model.eval(), cfg, meta


def trained_shape(run_args: dict) -> dict:
    """config.json keys for the shot shape a run trained on (the studio notes shots outside it):
    train_shots and train_frames (--frames); with --shot-lengths also train_frames_min / _max.
    Also the world: world_version (--world; 1 for runs from before it existed) and, for
    --oracle-captions runs, oracle_captions (their vocab.json has the oracle words)."""
    if not (run_args.get("shots") and run_args.get("frames")):
        return {}
    out = {
        "train_shots": int(run_args["shots"]),
        "train_frames": int(run_args["frames"]),
        "world_version": int(str(run_args.get("world") or "v1").lstrip("v")),
    }
    if run_args.get("oracle_captions"):
        out["oracle_captions"] = True
    lengths = parse_shot_lengths(run_args.get("shot_lengths"))
    if lengths:
        out["train_frames_min"], out["train_frames_max"] = min(lengths), max(lengths)
    return out


def register(index_path: str, name: str, path: str, description: str, params: int, nbytes: int, default: bool) -> None:
    """Adds or replaces `name` in public/models/index.json ({"models": [ModelEntry, ...]})."""
    index = {"models": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    models: List[dict] = [m for m in index.get("models", []) if m.get("name") != name]
    if default:
        for m in models:
            m.pop("default", None)
    entry = {"name": name, "path": path, "description": description, "params": params, "bytes": nbytes}
    if default:
        entry["default"] = True
    index["models"] = models + [entry]
    _write_json(index_path, index)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train.export", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="checkpoint directory (ckpt.json), its ckpt.json, or a torch file")
    src.add_argument("--random-init", type=int, metavar="SEED", help="export a seeded random-weight model")
    p.add_argument("--config", default=None, choices=sorted(CONFIGS), help="named config (default: the checkpoint's)")
    for k in ("image_size", "patch_size", "dim", "depth", "heads", "text_len", "t_freq_dim"):
        p.add_argument("--" + k.replace("_", "-"), type=int, default=None, help=f"override {k}")
    p.add_argument("--mlp-ratio", type=float, default=None)
    p.add_argument(
        "--route-view",
        default=None,
        choices=ROUTE_VIEWS,
        help="override the view of q, k routing scores with (MOC.md 3b); a model trained "
        "with another view runs, zero-shot, with this one",
    )
    p.add_argument("--ema", action="store_true", help="export the EMA weights")
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True, help="output folder, e.g. public/models/NAME")
    p.add_argument("--description", default="")
    p.add_argument("--register", metavar="INDEX_JSON", help="add the model to this index.json")
    p.add_argument("--default", action="store_true", help="with --register: make it the default model")
    return p


def main(argv: Optional[List[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    overrides = {
        k: getattr(args, k)
        for k in (
            "image_size",
            "patch_size",
            "dim",
            "depth",
            "heads",
            "text_len",
            "t_freq_dim",
            "mlp_ratio",
            "route_view",
        )
    }
    if args.random_init is not None:
        cfg = make_config(args.config or "tiny", **overrides)
        model, meta = random_model(cfg, args.random_init), {"randomInit": args.random_init}
    else:
        try:
            model, cfg, meta = load_checkpoint_model(args.ckpt, args.config, args.ema, overrides)
        except checkpoint.UnsafeCheckpoint as e:
            raise SystemExit(f"export: {e}") from None
    if args.description:
        meta["description"] = args.description
    manifest = export_model(model, cfg, args.out, args.name, meta)
    st = manifest["files"]["model.safetensors"]
    print(
        f"export: wrote {args.out} ({count_parameters(model)} parameters, "
        f"model.safetensors {st['bytes']} bytes, sha256 {st['sha256'][:12]}…)"
    )
    if args.register:
        public = os.path.dirname(os.path.dirname(os.path.abspath(args.register)))  # index at public/models/
        rel = os.path.relpath(os.path.abspath(args.out), public).replace(os.sep, "/")
        register(
            args.register,
            args.name,
            rel,
            args.description,
            count_parameters(model),
            sum(f["bytes"] for f in manifest["files"].values()),
            args.default,
        )
    return manifest


if __name__ == "__main__":
    main()
