"""Training data from the world, made on the fly: (frames, caption ids) per scene.

Scene seeds: sample `index` of a run with base seed `seed` uses scene seed
`seed * 1_000_000_007 + index` (index < 1e9). Held-out evaluation scenes must use a base that
no training run uses (the eval uses EVAL_SEED_BASE).
Batches are a pure function of (seed, step, rank): resuming at step s replays the same data.
Shot lengths (ShotLengths): every shot has `frames` frames, or with a set of lengths each step
draws one tuple of per-shot lengths (the same for every item and rank of the step) that keeps
the step's total of shots x frames frames, so the token count stays the same.
World version (`world`, world.py) and oracle captions (`oracle`) are dataset options; v1 without
oracle captions is the default and gives the same items as before they existed. `curriculum`
(objective.Curriculum) redraws scenes until they fit the step's stage; `aux_patch` adds the
auxiliary head's targets (objective.aux_targets).
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .render import render_shot
from .vocab import Vocab
from .world import Scene, global_caption, sample_scene, shot_caption

SEED_STRIDE = 1_000_000_007
EVAL_SEED_BASE = 9_000_000
SHOT_LENGTH_STREAM = 0x5107  # the shot-length draw's own generator stream (not a scene's)


def scene_seed(seed: int, index: int) -> int:
    return int(seed) * SEED_STRIDE + int(index)


def encode_scene(scene: Scene, vocab: Vocab, text_len: int, oracle: bool = False) -> np.ndarray:
    """Caption ids [S+1, L] int64: global caption (oracle: with sizes and patterns), then one
    caption per shot."""
    caps = [global_caption(scene, oracle)] + [shot_caption(scene, i) for i in range(len(scene.shots))]
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


def shot_length_tuples(lengths: Sequence[int], shots: int, total: int) -> List[Tuple[int, ...]]:
    """Every tuple of `shots` per-shot lengths taken from `lengths` that sums to `total`, in
    lexicographic order; order matters ((4, 12) and (12, 4) are two tuples)."""
    options = sorted({int(f) for f in lengths})
    out: List[Tuple[int, ...]] = []

    def extend(prefix: Tuple[int, ...], left: int) -> None:
        rest = shots - len(prefix) - 1  # shots still to fill after this one
        for f in options:
            if options[0] * rest <= left - f <= options[-1] * rest:  # the rest can still fit
                if rest:
                    extend(prefix + (f,), left - f)
                else:
                    out.append(prefix + (f,))

    if shots >= 1 and options:
        extend((), total)
    return out


def parse_shot_lengths(text: Optional[str]) -> Optional[List[int]]:
    """ "4,8,12" -> [4, 8, 12]; None (the option is off) -> None."""
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError("use comma-separated frame counts, e.g. 4,8,12") from None


class ShotLengths:
    """Per-shot lengths of every training step. Off (`lengths` None): every shot has `frames`
    frames. On: step s takes one of shot_length_tuples(lengths, shots, shots * frames), uniformly,
    from a generator seeded by (seed, s): a pure function of the step, so every item and every
    rank of a step, and a resumed run, get the same tuple. The sum, hence the token count, stays
    shots * frames. Raises ValueError (one line) when no tuple exists."""

    def __init__(self, shots: int, frames: int, lengths: Optional[Sequence[int]] = None, seed: int = 0):
        self.seed = int(seed)
        if lengths is None:
            self.tuples = [(int(frames),) * shots]
            return
        if not lengths or min(lengths) < 1:
            raise ValueError(f"shot lengths must be frame counts >= 1, got {list(lengths)}")
        self.tuples = shot_length_tuples(lengths, shots, shots * frames)
        if not self.tuples:
            raise ValueError(
                f"no {shots} shot lengths from {sorted(set(lengths))} sum to "
                f"{shots} x {frames} = {shots * frames} frames"
            )

    def frames_at(self, step: int) -> Tuple[int, ...]:
        if len(self.tuples) == 1:
            return self.tuples[0]
        rng = np.random.default_rng([SHOT_LENGTH_STREAM, self.seed, int(step)])
        return self.tuples[int(rng.integers(len(self.tuples)))]


class WorldDataset(torch.utils.data.Dataset):
    """Item `index` -> (video uint8 [T, H, W, 3], text int64 [S+1, L]), and with masks=True
    also the characters' pixels uint8 [T, H, W] (character_mask; for the trainer's --fg-weight).
    The scene's shots have lengths.frames_at(step) frames, step = index // step_items (the global
    batch, batch x world, as StepBatches numbers items); without `lengths`, `frames` each."""

    def __init__(
        self,
        seed: int,
        shots: int,
        frames: int,
        image_size: int,
        text_len: int,
        masks: bool = False,
        lengths: Optional[ShotLengths] = None,
        step_items: int = 1,
        world: int = 1,
        oracle: bool = False,
        curriculum=None,
        aux_patch: int = 0,
    ):
        self.seed, self.shots, self.frames = seed, shots, frames
        self.image_size, self.text_len = image_size, text_len
        self.masks = masks
        self.lengths = lengths or ShotLengths(shots, frames)
        self.step_items = step_items
        self.world, self.oracle, self.curriculum, self.aux_patch = world, oracle, curriculum, aux_patch
        self.vocab = Vocab(oracle=oracle)

    def __len__(self) -> int:
        return 10**9

    def scene(self, index: int) -> Scene:
        step = index // self.step_items
        frames = self.lengths.frames_at(step)

        def draw(seed: int) -> Scene:
            return sample_scene(seed, shots=self.shots, frames=frames, version=self.world)

        if self.curriculum is not None:
            return self.curriculum.scene(draw, scene_seed(self.seed, index), step)
        return draw(scene_seed(self.seed, index))

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, ...]:
        scene = self.scene(index)
        need_masks = self.masks or self.aux_patch > 0
        shots = [render_shot(scene, i, self.image_size, masks=need_masks) for i in range(len(scene.shots))]
        text = torch.from_numpy(encode_scene(scene, self.vocab, self.text_len, self.oracle))
        if not need_masks:
            return torch.from_numpy(np.concatenate(shots, 0)), text  # video [T, H, W, 3]
        video = torch.from_numpy(np.concatenate([f for f, _ in shots], 0))
        out: Tuple[torch.Tensor, ...] = (video, text)
        if self.masks:
            out += (
                torch.from_numpy(np.concatenate([character_mask(vis, self.image_size, len(f)) for f, vis in shots], 0)),
            )
        if self.aux_patch:
            from .objective import aux_targets

            cover, labels = aux_targets(scene, [vis for _, vis in shots], self.image_size, self.aux_patch)
            out += (torch.from_numpy(cover), torch.from_numpy(labels))
        return out


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


def make_loader(
    dataset: WorldDataset, start: int, stop: int, batch: int, rank: int, world: int, workers: int, pin: bool
):
    extra = {"prefetch_factor": 4} if workers > 0 else {}  # 2.x refuses it without workers
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=StepBatches(start, stop, batch, rank, world),
        num_workers=workers,
        pin_memory=pin,
        **extra,
    )


def batch(dataset: WorldDataset, indices: Sequence[int]) -> Tuple[torch.Tensor, ...]:
    items = [dataset[i] for i in indices]
    return tuple(torch.stack(parts) for parts in zip(*items))
