"""The reference MoC DiT (MODEL.md "The network"): an MMDiT over text + pixel-patch tokens.

Dimension legend
    B batch             S shots              T frames (sum over shots)   L tokens per caption
    N tokens = Nt + Nv  Nt = (S+1)*L text    Nv = T*G*G video            G = image_size/patch
    d model width       H heads              D = d/H head dim            C chunks, K routed
    p patch side        P = C_img*p*p values per patch (C_img = 3 channels)

Data flow (shape comments below use the legend)
    text ids [B,S+1,L] -> text_embed + text_pos -> xt [B,Nt,d]
    x_t frames [B,T,3,Hi,Wi] -> patchify (c, py, px order) -> video_embed -> xv [B,Nv,d]
    per-shot timesteps [B,S] -> prepend 0 for the global caption -> t_embed -> c [B,S+1,d]
    depth x Block(xt, xv; c): adaLN-zero modulation of every token from ITS shot's timestep,
        separate text/video weights, one joint attention over [text; video] through
        moc.attend in mode dense / moc / shot, QK RMS-norm, interleaved 3D RoPE (layout.py).
        The last block is "pre-only" for text (SD3): text keys/values feed the attention but the
        text stream is not updated, so it has no out_text / mlp_text and mod_text is [2d, d].
    final: adaLN (shift, scale) + LayerNorm + proj -> unpatchify -> velocity [B,T,3,Hi,Wi]
Rectified flow: x_t = (1 - t) x_0 + t eps, t in [0,1] (1 = noise), target v = eps - x_0 (with
cfg.prediction "x" the network outputs x̂0 and forward returns (x_t - x̂0) / max(t, t_min));
a shot at t = 0 is a clean condition. Caption dropout = every caption all `<pad>` (id 0).
LayerNorms have no affine weights (eps 1e-6); GELU is the tanh approximation; RMSNorm eps 1e-6.
RoPE: pairs of adjacent channels (2j, 2j+1) rotate together; of the D/2 pairs the first
nt = D/2 - 2*(D/2 // 3) rotate with t, the next D/2 // 3 with y, the last D/2 // 3 with x;
pair j of an axis with n pairs has frequency rope_theta ** (-j / n).
Queries/keys are RMS-normed per head, then rotated. Routing scores (MOC.md §3b) use the view
cfg.route_view names: "rotary" (as rotated, the v1 meaning), "spatial" (rotated by y and x only:
the keys and queries before the temporal rotation; every token of a frame shares one time, so
per frame this is exactly the rotated key turned back by its frame's time) or "unrotated" (the
RMS-normed q, k before any rotation). Attention always uses the rotated q, k.

Weight names (state_dict == safetensors names; i = block index, last = depth - 1)
    text_embed.weight                      [V, d]
    text_pos.weight                        [L, d]
    video_embed.weight / .bias             [d, P] / [d]
    t_embed.fc1.weight / .bias             [d, t_freq_dim] / [d]   (input: [cos | sin] of 1000 t)
    t_embed.fc2.weight / .bias             [d, d] / [d]
    blocks.i.mod_text.weight / .bias       [6d, d] / [6d]   ([2d, d] / [2d] in the last block)
    blocks.i.mod_video.weight / .bias      [6d, d] / [6d]   chunks: shift1 scale1 gate1 shift2 scale2 gate2
    blocks.i.attn.qkv_text.weight / .bias  [3d, d] / [3d]   rows: q (H*D), k, v; head-major inside
    blocks.i.attn.qkv_video.weight / .bias [3d, d] / [3d]
    blocks.i.attn.q_norm_text.weight       [D]   (and k_norm_text, q_norm_video, k_norm_video)
    blocks.i.attn.out_text.weight / .bias  [d, d] / [d]     (not in the last block)
    blocks.i.attn.out_video.weight / .bias [d, d] / [d]
    blocks.i.mlp_text.fc1.weight / .bias   [h, d] / [h]     h = mlp_ratio*d (not in the last block)
    blocks.i.mlp_text.fc2.weight / .bias   [d, h] / [d]
    blocks.i.mlp_video.fc1 / .fc2          as mlp_text
    final.mod.weight / .bias               [2d, d] / [2d]   chunks: shift, scale
    final.proj.weight / .bias              [P, d] / [P]
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import moc
from .layout import Layout, make_layout
from .vocab import build_words


ROUTE_VIEWS = ("rotary", "spatial", "unrotated")


@dataclass
class ModelConfig:
    vocab_size: int = len(build_words())
    text_len: int = 24  # L
    image_size: int = 64
    patch_size: int = 4  # p
    channels: int = 3
    dim: int = 160  # d
    depth: int = 8
    heads: int = 5  # H (D = 32)
    mlp_ratio: float = 4.0
    rope_theta: float = 100.0
    t_freq_dim: int = 256
    # MoC defaults (forward arguments override them)
    chunk_frames: int = 1
    top_k: int = 4
    causal: bool = True
    # MOC.md §3b: MoC queries see only the captions of their own and earlier shots (dense mode
    # still sees every token), so with causal routing no token depends on a later shot
    causal_text: bool = False
    # What the network outputs: "v" (the velocity itself) or "x" (the clean frames x̂0, turned into
    # v = (x_t - x̂0) / max(t, t_min) in forward). With x-prediction the noise in x_t reaches the
    # velocity through that identity instead of through video_embed / final.proj, so no rank limit
    # of those projections can leave noise behind (large pixel patches need it).
    prediction: str = "v"
    t_min: float = 0.05
    # Which view of q, k routing scores with (ROUTE_VIEWS; module docstring, MOC.md §3b)
    route_view: str = "rotary"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def patch_dim(self) -> int:
        return self.channels * self.patch_size**2

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)

    def validate(self) -> None:
        assert self.image_size % self.patch_size == 0, "image_size must be a multiple of patch_size"
        assert self.dim % self.heads == 0, "dim must be a multiple of heads"
        assert self.head_dim % 2 == 0 and self.head_dim // 2 >= 3, "head_dim must be even and >= 6"
        assert self.depth >= 1
        assert self.prediction in ("v", "x"), "prediction must be 'v' or 'x'"
        assert self.route_view in ROUTE_VIEWS, f"route_view must be one of {ROUTE_VIEWS}"

    def to_dict(self) -> dict:
        """The fields, less the contract-v2 options at their defaults (route_view "rotary",
        causal_text false): files written before the options existed mean exactly that, and stay
        byte for byte what they were."""
        d = asdict(self)
        if d["route_view"] == "rotary":
            del d["route_view"]
        if not d["causal_text"]:
            del d["causal_text"]
        return d


CONFIGS: Dict[str, dict] = {
    # A velocity-predicting pixel DiT needs dim >= patch_dim (3 * patch^2): with fewer channels
    # than a patch has values, video_embed / final.proj cannot see or move patch_dim - dim
    # directions of x_t, so that much of the starting noise survives every Euler step.
    # ~7.7M parameters (~14.7 MiB fp16): 64x64 frames, 8x8 patches (patch_dim 192 = dim),
    # 64 tokens per frame; the shipped `moc-base` (4 shots x 8 frames = 2168 tokens)
    "base": dict(image_size=64, patch_size=8, dim=192, depth=6, heads=6, prediction="x"),
    # ~7.2M parameters (~13.8 MiB fp16): 64x64 frames, 4x4 patches, 256 tokens per frame
    "small": dict(image_size=64, patch_size=4, dim=160, depth=8, heads=5),
    # < 1 MB fp16, trainable on two CPU cores: 32x32 frames, 4x4 patches (patch_dim 48 < 64),
    # 64 tokens per frame (the shipped `moc-tiny` test model)
    "mini": dict(image_size=32, patch_size=4, dim=64, depth=3, heads=2, t_freq_dim=64),
    # for tests and CI: 16x16 frames, 16 tokens per frame
    "tiny": dict(image_size=16, patch_size=4, dim=32, depth=2, heads=2, t_freq_dim=32),
}


def make_config(name: str = "small", **overrides) -> ModelConfig:
    cfg = ModelConfig(**{**CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}})
    cfg.validate()
    return cfg


# ---- small pieces ---------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()  # normalise in f32, keep x's dtype
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class TimestepEmbed(nn.Module):
    def __init__(self, dim: int, freq_dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.fc1 = nn.Linear(freq_dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, t):  # t [...] in [0, 1]
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = (t.float() * 1000.0)[..., None] * freqs  # [..., half]
        emb = torch.cat([torch.cos(args), torch.sin(args)], -1)  # [..., freq_dim]
        return self.fc2(F.silu(self.fc1(emb)))  # [..., d]


def rope_tables(pos: torch.Tensor, head_dim: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """pos [N, 3] (t, y, x) -> cos, sin [N, D/2] (see the module docstring for the split)."""
    pairs = head_dim // 2
    n_sp = pairs // 3
    n_t = pairs - 2 * n_sp
    fr = lambda n: theta ** (-torch.arange(n, dtype=torch.float32, device=pos.device) / n)
    ang = torch.cat([pos[:, 0:1] * fr(n_t), pos[:, 1:2] * fr(n_sp), pos[:, 2:3] * fr(n_sp)], -1)
    return torch.cos(ang), torch.sin(ang)  # [N, D/2]


def route_rope_tables(pos: torch.Tensor, head_dim: int, theta: float, view: str):
    """The rotation routing's q, k take (MOC.md §3b): None for "rotary" (they are the attention's
    q, k), (cos, sin) [N, D/2] of the spatial axes alone (time 0) for "spatial", () for
    "unrotated" (no rotation)."""
    if view == "rotary":
        return None
    if view == "spatial":
        return rope_tables(torch.cat([torch.zeros_like(pos[:, :1]), pos[:, 1:]], 1), head_dim, theta)
    if view == "unrotated":
        return ()
    raise ValueError(f"route_view must be one of {ROUTE_VIEWS}, got {view!r}")


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, N, D], rotate channel pairs (2j, 2j+1) by the angles of cos/sin [N, D/2]."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)  # [B, H, N, D/2, 2]
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], -1)  # [B, H, N, D/2, 2]
    return out.flatten(-2).to(x.dtype)


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


# ---- attention context: one per forward, shared by all blocks -------------------------------
class LayoutMasks:
    """Chunk-level masks of one layout on one device, built once and cached with the layout
    (so a training step launches no mask-building work and copies nothing host -> device)."""

    def __init__(self, ch: moc.Chunks):
        self.shot = moc.shot_mask(ch)[None, None]  # [1, 1, N, C]
        self._mand = {c: moc.mandatory_mask(ch, c)[None, None] for c in (False, True)}  # [1, 1, N, C] each
        self._cand = {c: moc.candidate_mask(ch, c) for c in (False, True)}  # [N, C] each

    def candidates(self, causal: bool) -> torch.Tensor:
        return self._cand[bool(causal)]

    def mandatory(self, causal_text: bool) -> torch.Tensor:
        return self._mand[bool(causal_text)]


class AttnContext:
    """Carries the mode and the chunk tables; computes each layer's key sets."""

    def __init__(
        self,
        ch: moc.Chunks,
        masks: "LayoutMasks",
        mode: str,
        top_k: int,
        causal: bool,
        drop_off: float,
        drop_in: float,
        generator,
        backend: str,
        q_tile: int,
        checkpoint: bool,
        trace: Optional[dict],
        stats: bool,
        causal_text: bool = False,
    ):
        if mode not in ("dense", "moc", "shot"):
            raise ValueError(f"attention mode must be dense, moc or shot, got {mode!r}")
        self.ch, self.mode, self.top_k, self.causal = ch, mode, top_k, causal
        self.drop_off, self.drop_in, self.generator = drop_off, drop_in, generator
        self.backend, self.q_tile, self.checkpoint = backend, q_tile, checkpoint
        self.trace, self.stats = trace, stats
        self.sparsity: List[float] = []
        self.fixed = masks.shot if mode == "shot" else None  # [1, 1, N, C]
        if mode == "moc":
            self.mand = masks.mandatory(causal_text)  # [1, 1, N, C]
            self.cand = masks.candidates(causal)  # [N, C]

    def __call__(self, q, k, v, layer: int, qr=None, kr=None):  # q, k, v [B, H, N, D]
        """qr, kr: routing's view of q, k ([B, H, N, D] each, MOC.md §3b); None: q, k themselves."""
        allowed = self.fixed
        if self.mode == "moc":
            qr, kr = (q, k) if qr is None else (qr, kr)
            routed = moc.route(qr, kr, self.ch, self.top_k, self.causal, cand=self.cand)  # [B, H, N, K]
            if self.drop_off > 0 or self.drop_in > 0:
                table = moc.drop_off_in(routed, self.cand, self.drop_off, self.drop_in, self.generator)  # [B, H, N, C]
            else:
                table = moc.routed_table(routed, self.ch.n_chunks)  # [B, H, N, C]
            allowed = self.mand | table  # [B, H, N, C]
            if self.trace is not None:
                self.trace[f"blocks.{layer}.routed"] = routed
        if self.stats:
            self.sparsity.append(moc.sparsity(allowed, self.ch))
        return moc.attend(
            q, k, v, allowed, self.ch.token_chunk, self.backend, self.q_tile, self.checkpoint
        )  # [B, H, N, D]


# ---- the network ----------------------------------------------------------------------------
class Attention(nn.Module):
    """The attention's weights: `project` before routing and attention, `output` after (Block)."""

    def __init__(self, cfg: ModelConfig, pre_only: bool):
        super().__init__()
        d, D = cfg.dim, cfg.head_dim
        self.heads, self.pre_only = cfg.heads, pre_only
        self.qkv_text = nn.Linear(d, 3 * d)
        self.qkv_video = nn.Linear(d, 3 * d)
        self.q_norm_text, self.k_norm_text = RMSNorm(D), RMSNorm(D)
        self.q_norm_video, self.k_norm_video = RMSNorm(D), RMSNorm(D)
        if not pre_only:
            self.out_text = nn.Linear(d, d)
        self.out_video = nn.Linear(d, d)

    def project(self, ht, hv, cos, sin, route_rope=None):
        """Queries, keys, values of [text; video], QK-normed and rotated: [B, H, N, D] each; then
        routing's q, k (route_rope from route_rope_tables; None, None for the rotary view)."""
        B, Nt, d = ht.shape
        Nv, H = hv.shape[1], self.heads
        qt, kt, vt = self.qkv_text(ht).view(B, Nt, 3, H, d // H).unbind(2)  # [B, Nt, H, D] each
        qv, kv, vv = self.qkv_video(hv).view(B, Nv, 3, H, d // H).unbind(2)  # [B, Nv, H, D] each
        q = torch.cat([self.q_norm_text(qt), self.q_norm_video(qv)], 1).transpose(1, 2)  # [B, H, N, D]
        k = torch.cat([self.k_norm_text(kt), self.k_norm_video(kv)], 1).transpose(1, 2)  # [B, H, N, D]
        v = torch.cat([vt, vv], 1).transpose(1, 2)  # [B, H, N, D]
        if route_rope is None:
            qr = kr = None
        elif len(route_rope) == 0:
            qr, kr = q, k  # unrotated
        else:
            qr, kr = apply_rope(q, *route_rope), apply_rope(k, *route_rope)  # spatial axes only
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, qr, kr

    def output(self, o, Nt: int):
        """Attention output [B, H, N, D] -> text [B, Nt, d] (None when pre-only), video [B, Nv, d]."""
        B, H, N, D = o.shape
        o = o.transpose(1, 2).reshape(B, N, H * D)  # [B, N, d]
        ot = None if self.pre_only else self.out_text(o[:, :Nt])  # [B, Nt, d]
        return ot, self.out_video(o[:, Nt:])  # [B, Nv, d]


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, pre_only: bool = False):
        super().__init__()
        d = cfg.dim
        self.pre_only = pre_only
        self.mod_text = nn.Linear(d, (2 if pre_only else 6) * d)
        self.mod_video = nn.Linear(d, 6 * d)
        self.attn = Attention(cfg, pre_only)
        if not pre_only:
            self.mlp_text = Mlp(d, cfg.mlp_hidden)
        self.mlp_video = Mlp(d, cfg.mlp_hidden)

    def forward(self, xt, xv, cs, rows: "ShotRows", cos, sin, ctx, layer, route_rope=None):
        # xt [B, Nt, d], xv [B, Nv, d], cs = silu(c) [B, S+1, d]. Streams are modulated as groups
        # of tokens sharing one row of cs: [B, Gt, Nt/Gt, d] and [B, Gv, Nv/Gv, d] (ShotRows).
        # pre / post hold everything but the attention itself, so `compile_blocks` can fuse them
        # while routing and masked attention stay eager.
        q, k, v, qr, kr, mt, mv = self.pre(xt, xv, cs, rows, cos, sin, route_rope)
        o = ctx(q, k, v, layer, qr, kr)  # [B, H, N, D]
        if ctx.trace is not None:
            ctx.trace.update(
                {
                    f"blocks.{layer}.attn.q": q,
                    f"blocks.{layer}.attn.k": k,
                    f"blocks.{layer}.attn.v": v,
                    f"blocks.{layer}.attn.o": o,
                }
            )
            if qr is not None:
                ctx.trace.update({f"blocks.{layer}.attn.q_route": qr, f"blocks.{layer}.attn.k_route": kr})
        return self.post(xt, xv, o, mt, mv, rows)

    def pre(self, xt, xv, cs, rows: "ShotRows", cos, sin, route_rope=None):
        B, Nt, d = xt.shape
        Nv = xv.shape[1]
        mt = rows.text(self.mod_text(cs)).chunk(2 if self.pre_only else 6, -1)  # each [B, Gt, 1, d]
        mv = rows.video(self.mod_video(cs)).chunk(6, -1)  # each [B, Gv, 1, d]
        ht = modulate(layer_norm(xt.view(B, rows.gt, -1, d)), mt[0], mt[1]).view(B, Nt, d)
        hv = modulate(layer_norm(xv.view(B, rows.gv, -1, d)), mv[0], mv[1]).view(B, Nv, d)
        q, k, v, qr, kr = self.attn.project(ht, hv, cos, sin, route_rope)  # [B, H, N, D] each
        return q, k, v, qr, kr, mt, mv

    def post(self, xt, xv, o, mt, mv, rows: "ShotRows"):
        B, Nt, d = xt.shape
        Nv = xv.shape[1]
        at, av = self.attn.output(o, Nt)
        xt4, xv4 = xt.view(B, rows.gt, -1, d), xv.view(B, rows.gv, -1, d)
        xv4 = xv4 + mv[2] * av.view(B, rows.gv, -1, d)
        xv4 = xv4 + mv[5] * self.mlp_video(modulate(layer_norm(xv4), mv[3], mv[4]))
        if not self.pre_only:
            xt4 = xt4 + mt[2] * at.view(B, rows.gt, -1, d)
            xt4 = xt4 + mt[5] * self.mlp_text(modulate(layer_norm(xt4), mt[3], mt[4]))
        return xt4.reshape(B, Nt, d), xv4.reshape(B, Nv, d)


class FinalLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.mod = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.patch_dim)

    def forward(self, xv, cs, rows: "ShotRows"):
        B, Nv, d = xv.shape
        shift, scale = rows.video(self.mod(cs)).chunk(2, -1)  # [B, Gv, 1, d] each
        h = modulate(layer_norm(xv.view(B, rows.gv, -1, d)), shift, scale)
        return self.proj(h).reshape(B, Nv, -1)  # [B, Nv, P]


class ShotRows:
    """Per-token conditioning without a [B, N, 6d] gather (whose backward is a scatter-add of
    thousands of tokens onto S+1 rows). The text stream is S+1 captions of L tokens, so it is
    viewed as [B, S+1, L, d] against rows [B, S+1, 1, k]; the video stream, when every shot has
    the same number of frames, as [B, S, F*G*G, d] against rows 1..S; otherwise (shots of
    different lengths) frame by frame, as [B, T, G*G, d] against the row of each frame's shot
    (a gather of T rows, whose backward adds T rows, not Nv). The values are the same either way."""

    def __init__(self, layout: Layout, device):
        self.gt = layout.shots + 1
        self.uniform = len(set(layout.frames)) == 1
        self.gv = layout.shots if self.uniform else sum(layout.frames)
        self.frame_shot = torch.as_tensor(layout.frame_shot(), device=device)  # [T] shot of each frame
        self.frame_row = self.frame_shot + 1  # [T] row of cs per frame

    def text(self, m):  # [B, S+1, k] -> [B, S+1, 1, k]
        return m[:, :, None, :]

    def video(self, m):  # [B, S+1, k] -> [B, Gv, 1, k]
        return m[:, 1:, None, :] if self.uniform else m[:, self.frame_row, None, :]


class MoCDiT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d = cfg.dim
        self.text_embed = nn.Embedding(cfg.vocab_size, d)
        self.text_pos = nn.Embedding(cfg.text_len, d)
        self.video_embed = nn.Linear(cfg.patch_dim, d)
        self.t_embed = TimestepEmbed(d, cfg.t_freq_dim)
        self.blocks = nn.ModuleList([Block(cfg, pre_only=(i == cfg.depth - 1)) for i in range(cfg.depth)])
        self.final = FinalLayer(cfg)
        self._cache: Dict[tuple, tuple] = {}
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.text_embed.weight, std=0.02)
        nn.init.normal_(self.text_pos.weight, std=0.02)
        for lin in (self.t_embed.fc1, self.t_embed.fc2):
            nn.init.normal_(lin.weight, std=0.02)
        for b in self.blocks:  # adaLN-zero
            for lin in (b.mod_text, b.mod_video):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
        for lin in (self.final.mod, self.final.proj):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    # -- layout helpers --
    def layout(self, frames: Sequence[int], chunk_frames: int) -> Layout:
        return make_layout(tuple(int(f) for f in frames), self.cfg.text_len, self.cfg.grid, int(chunk_frames))

    def _tensors(self, layout: Layout, device):
        key = (layout.frames, layout.chunk_frames, str(device))
        if key not in self._cache:
            pos = torch.as_tensor(layout.pos, device=device)
            cos, sin = rope_tables(pos, self.cfg.head_dim, self.cfg.rope_theta)
            rr = route_rope_tables(pos, self.cfg.head_dim, self.cfg.rope_theta, self.cfg.route_view)
            ch = moc.Chunks.from_layout(layout, device)
            self._cache[key] = (ch, LayoutMasks(ch), cos, sin, ShotRows(layout, device), rr)
        return self._cache[key]

    def patchify(self, video):  # [B, T, c, Hi, Wi]
        B, T, c, Hi, Wi = video.shape
        p, G = self.cfg.patch_size, self.cfg.grid
        x = video.reshape(B, T, c, G, p, G, p).permute(0, 1, 3, 5, 2, 4, 6)  # [B, T, G, G, c, p, p]
        return x.reshape(B, T * G * G, c * p * p)  # [B, Nv, P]

    def unpatchify(self, x, T):  # [B, Nv, P]
        B = x.shape[0]
        p, G, c = self.cfg.patch_size, self.cfg.grid, self.cfg.channels
        x = x.reshape(B, T, G, G, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)  # [B, T, c, G, p, G, p]
        return x.reshape(B, T, c, G * p, G * p)  # [B, T, c, Hi, Wi]

    def forward(
        self,
        video,
        t_shot,
        text,
        frames: Optional[Sequence[int]] = None,
        mode: str = "dense",
        chunk_frames: Optional[int] = None,
        top_k: Optional[int] = None,
        causal: Optional[bool] = None,
        drop_off: float = 0.0,
        drop_in: float = 0.0,
        generator: Optional[torch.Generator] = None,
        backend: str = "auto",
        q_tile: int = 1024,
        checkpoint: bool = False,
        trace: Optional[dict] = None,
        stats: Optional[list] = None,
        causal_text: Optional[bool] = None,
    ):
        """Velocity for noisy frames.

        video [B, T, 3, Hi, Wi] (x_t, roughly [-1, 1]); t_shot [B, S] in [0, 1]; text [B, S+1, L]
        ids (global caption first); frames: frames per shot (default: T split evenly over S).
        mode "dense" | "moc" | "shot". drop_off / drop_in: the training regularisers (moc only).
        causal_text: MoC queries see only captions of shots <= theirs (default: the config's).
        trace: a dict to fill with per-layer q/k/v/o, routed indices and stream outputs.
        stats: a list to receive each layer's sparsity. Returns [B, T, 3, Hi, Wi].
        """
        cfg = self.cfg
        B, T = video.shape[:2]
        S = t_shot.shape[1]
        if frames is None:
            assert T % S == 0, "pass frames= when shots have different lengths"
            frames = (T // S,) * S
        if sum(frames) != T or len(frames) != S or tuple(text.shape) != (B, S + 1, cfg.text_len):
            raise ValueError(
                f"shapes disagree: video T={T}, frames={tuple(frames)}, t_shot S={S}, "
                f"text {tuple(text.shape)} (want [B, S+1, {cfg.text_len}])"
            )
        layout = self.layout(frames, chunk_frames or cfg.chunk_frames)
        ch, masks, cos, sin, rows, route_rope = self._tensors(layout, video.device)
        if mode != "moc":
            route_rope = None  # nothing routes
        ctx = AttnContext(
            ch,
            masks,
            mode,
            cfg.top_k if top_k is None else top_k,
            cfg.causal if causal is None else causal,
            drop_off,
            drop_in,
            generator,
            backend,
            q_tile,
            checkpoint,
            trace,
            stats is not None,
            cfg.causal_text if causal_text is None else causal_text,
        )

        xt = self.text_embed(text) + self.text_pos.weight  # [B, S+1, L, d]
        xt = xt.reshape(B, -1, cfg.dim)  # [B, Nt, d]
        xv = self.video_embed(self.patchify(video))  # [B, Nv, d]
        t_all = torch.cat([torch.zeros_like(t_shot[:, :1]), t_shot], 1)  # [B, S+1], global caption at t=0
        cs = F.silu(self.t_embed(t_all))  # [B, S+1, d]
        for i, block in enumerate(self.blocks):
            xt, xv = block(xt, xv, cs, rows, cos, sin, ctx, i, route_rope)
            if trace is not None:
                trace[f"blocks.{i}.text"], trace[f"blocks.{i}.video"] = xt, xv
        out = self.final(xv, cs, rows)  # [B, Nv, P]
        if stats is not None:
            stats.extend(ctx.sparsity)
        y = self.unpatchify(out, T)  # [B, T, 3, Hi, Wi]
        if cfg.prediction == "x":  # y = x̂0 -> v = (x_t - x̂0) / t
            t_frame = t_shot.float()[:, rows.frame_shot]  # [B, T] (cached: no host sync)
            return (video.float() - y.float()) / t_frame.clamp(min=cfg.t_min)[:, :, None, None, None]
        return y


def compile_blocks(model: MoCDiT) -> None:
    """torch.compile (PyTorch >= 2) every block's `pre` and `post`: norms, modulation, projections,
    RoPE and MLPs fuse, while routing and attention stay eager (their masks change every step).
    Same weights and state_dict; a training speed-up only."""
    if not hasattr(torch, "compile"):
        raise RuntimeError(f"compiling needs PyTorch >= 2.0, this is {torch.__version__}")
    for b in model.blocks:
        b.pre = torch.compile(b.pre, dynamic=False)
        b.post = torch.compile(b.post, dynamic=False)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
