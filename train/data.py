"""Training data from the world, made on the fly: (frames, caption ids) per scene.

Scene seeds: sample `index` of a run with base seed `seed` uses scene seed
`seed * 1_000_000_007 + index` (index < 1e9). Held-out evaluation scenes must use a base that
no training run uses (the eval uses EVAL_SEED_BASE).
Batches are a pure function of (seed, step, rank): resuming at step s replays the same data.
"""
from __future__ import annotations

from typing import Iterator, List, Sequence, Tuple

import numpy as np
import torch

from .render import render_shot
from .vocab import Vocab
from .world import Scene, global_caption, sample_scene, shot_caption

SEED_STRIDE = 1_000_000_007
EVAL_SEED_BASE = 9_000_000


def scene_seed(seed: int, index: int) -> int:
    return int(seed) * SEED_STRIDE + int(index)


def encode_scene(scene: Scene, vocab: Vocab, text_len: int) -> np.ndarray:
    """Caption ids [S+1, L] int64: global caption, then one caption per shot."""
    caps = [global_caption(scene)] + [shot_caption(scene, i) for i in range(len(scene.shots))]
    rows = []
    for c in caps:
        enc = vocab.encode(c, text_len)
        if enc.unknown:
            raise ValueError(f"world caption has unknown words {enc.unknown}: {c!r}")
        rows.append(enc.ids)
    return np.array(rows, np.int64)


def frames_to_model(video: torch.Tensor) -> torch.Tensor:
    """uint8 [..., T, H, W, 3] -> float [..., T, 3, H, W] in [-1, 1]."""
    x = video.float().div(127.5).sub(1.0)
    return x.movedim(-1, -3)


def model_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float [..., T, 3, H, W] in [-1, 1] -> uint8 [..., T, H, W, 3]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1)


def character_mask(visible: dict, size: int, frames: int) -> np.ndarray:
    """uint8 [F, H, W]: 1 where any character is drawn (body or outline), grown by one pixel
    in each direction so the edge against the background counts as the character's."""
    m = np.zeros((frames, size, size), bool)
    for v in visible.values():
        m |= v
    grown = m.copy()
    grown[:, 1:] |= m[:, :-1]
    grown[:, :-1] |= m[:, 1:]
    grown[:, :, 1:] |= m[:, :, :-1]
    grown[:, :, :-1] |= m[:, :, 1:]
    return grown.astype(np.uint8)


class WorldDataset(torch.utils.data.Dataset):
    """Item `index` -> (video uint8 [T, H, W, 3], text int64 [S+1, L]), and with masks=True
    also the characters' pixels uint8 [T, H, W] (character_mask; for the trainer's --fg-weight)."""

    def __init__(self, seed: int, shots: int, frames: int, image_size: int, text_len: int,
                 masks: bool = False):
        self.seed, self.shots, self.frames = seed, shots, frames
        self.image_size, self.text_len = image_size, text_len
        self.masks = masks
        self.vocab = Vocab()

    def __len__(self) -> int:
        return 10 ** 9

    def scene(self, index: int) -> Scene:
        return sample_scene(scene_seed(self.seed, index), shots=self.shots, frames=self.frames)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, ...]:
        scene = self.scene(index)
        shots = [render_shot(scene, i, self.image_size, masks=self.masks) for i in range(len(scene.shots))]
        text = torch.from_numpy(encode_scene(scene, self.vocab, self.text_len))
        if not self.masks:
            return torch.from_numpy(np.concatenate(shots, 0)), text           # video [T, H, W, 3]
        video = np.concatenate([f for f, _ in shots], 0)
        mask = np.concatenate([character_mask(vis, self.image_size, len(f)) for f, vis in shots], 0)
        return torch.from_numpy(video), text, torch.from_numpy(mask)


class StepBatches(torch.utils.data.Sampler):
    """Index lists for steps start..stop-1 of one rank: step s, rank r, item i ->
    (s * world + r) * batch + i. The same batches on resume, disjoint across ranks."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[List[int]]:
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))


def make_loader(dataset: WorldDataset, start: int, stop: int, batch: int, rank: int, world: int,
                workers: int, pin: bool):
    extra = {"prefetch_factor": 4} if workers > 0 else {}  # 2.x refuses it without workers
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=StepBatches(start, stop, batch, rank, world), num_workers=workers,
        pin_memory=pin, **extra)


def batch(dataset: WorldDataset, indices: Sequence[int]) -> Tuple[torch.Tensor, ...]:
    items = [dataset[i] for i in indices]
    return tuple(torch.stack(parts) for parts in zip(*items))
