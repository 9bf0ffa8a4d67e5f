"""Token layout of one multi-shot sequence: the MoC chunk table and RoPE positions.

Stream order (LCT, MOC.md §3): global caption, then for each shot its caption and its frames.
    [G text][cap 1][shot 1 frames ...][cap 2][shot 2 frames ...] ... [cap S][shot S frames ...]
Chunks, in stream order: each caption is one text chunk (shot -1 for the global caption, s for
the caption of shot s, shots numbered from 0); video chunks hold `chunk_frames` consecutive
frames of one shot (the last chunk of a shot may be shorter) and never cross a shot boundary.

Token order inside the model is NOT stream order: the model keeps two streams, text then video
    internal = [G text, cap 0 .. cap S-1 text | shot 0 frames, ..., shot S-1 frames]
(video tokens frame-major, then patch row, then patch column). Attention and routing only need
`token_chunk` (the stream-order chunk id of every internal token), so they are indifferent to
the storage order; `stream_index[i]` gives the stream position of internal token i, to compare
with a stream-ordered implementation.

RoPE positions (t, y, x), one float triple per token (the project's choice, written here once):
    global caption tokens       t = 0,            y = x = (G - 1) / 2   (G = patches per side)
    caption of shot s           t = tau_s,        y = x = (G - 1) / 2
    frame f of shot s, patch    t = tau_s + 1 + f, y = patch row, x = patch column
with tau_0 = 1 and tau_{s+1} = tau_s + 1 + F_s: time runs through the stream, each caption
taking the time slot just before its shot, at the centre of the frame. Word order inside a
caption comes from the learned `text_pos` embedding, not from RoPE.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Tuple

import numpy as np

TEXT, VIDEO = 0, 1


@dataclass(frozen=True)
class Layout:
    frames: Tuple[int, ...]  # frames per shot (S shots)
    text_len: int  # L: tokens per caption (padded)
    grid: int  # G: patches per side, P = G*G tokens per frame
    chunk_frames: int  # frames per video chunk
    # chunk table, stream order, C chunks
    chunk_start: np.ndarray  # [C] int32, stream token index
    chunk_end: np.ndarray  # [C] int32, exclusive
    chunk_kind: np.ndarray  # [C] int32, 0 text / 1 video
    chunk_shot: np.ndarray  # [C] int32, -1 for the global caption
    # per token, internal order (text stream then video stream), N tokens
    token_chunk: np.ndarray  # [N] int64, stream-order chunk id
    token_shot: np.ndarray  # [N] int64, -1 for the global caption
    stream_index: np.ndarray  # [N] int64, stream position of each internal token
    pos: np.ndarray  # [N, 3] float32, RoPE (t, y, x)

    @property
    def shots(self) -> int:
        return len(self.frames)

    @property
    def n_text(self) -> int:
        return (self.shots + 1) * self.text_len

    @property
    def n_video(self) -> int:
        return sum(self.frames) * self.grid * self.grid

    @property
    def n_tokens(self) -> int:
        return self.n_text + self.n_video

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_start)

    def chunk_len(self) -> np.ndarray:
        return (self.chunk_end - self.chunk_start).astype(np.int64)

    def frame_shot(self) -> np.ndarray:
        """[T] shot index of every frame (T = sum of frames)."""
        return np.repeat(np.arange(self.shots), self.frames)


@lru_cache(maxsize=64)
def make_layout(frames: Tuple[int, ...], text_len: int, grid: int, chunk_frames: int) -> Layout:
    frames = tuple(int(f) for f in frames)
    assert frames and all(f >= 1 for f in frames) and text_len >= 1 and grid >= 1 and chunk_frames >= 1
    P, L, S = grid * grid, text_len, len(frames)
    centre = (grid - 1) / 2.0
    starts, ends, kinds, shots = [], [], [], []
    text_stream, video_stream = [], []  # stream index of each internal token
    text_pos, video_pos = [], []
    text_chunk, video_chunk = [], []
    text_shot, video_shot = [], []
    rows, cols = np.divmod(np.arange(P), grid)

    def add_caption(shot: int, tau: int, at: int) -> int:
        cid = len(starts)
        starts.append(at)
        ends.append(at + L)
        kinds.append(TEXT)
        shots.append(shot)
        text_stream.append(np.arange(at, at + L))
        text_pos.append(np.tile([tau, centre, centre], (L, 1)))
        text_chunk.append(np.full(L, cid))
        text_shot.append(np.full(L, shot))
        return at + L

    at = add_caption(-1, 0, 0)
    tau = 1
    for s, F in enumerate(frames):
        at = add_caption(s, tau, at)
        for f0 in range(0, F, chunk_frames):
            nf = min(chunk_frames, F - f0)
            cid = len(starts)
            starts.append(at)
            ends.append(at + nf * P)
            kinds.append(VIDEO)
            shots.append(s)
            video_stream.append(np.arange(at, at + nf * P))
            t = tau + 1 + f0 + np.repeat(np.arange(nf), P)
            video_pos.append(np.stack([t, np.tile(rows, nf), np.tile(cols, nf)], 1))
            video_chunk.append(np.full(nf * P, cid))
            video_shot.append(np.full(nf * P, s))
            at += nf * P
        tau += 1 + F

    cat = lambda xs, dt: np.concatenate(xs).astype(dt)
    return Layout(
        frames=frames,
        text_len=L,
        grid=grid,
        chunk_frames=chunk_frames,
        chunk_start=np.array(starts, np.int32),
        chunk_end=np.array(ends, np.int32),
        chunk_kind=np.array(kinds, np.int32),
        chunk_shot=np.array(shots, np.int32),
        token_chunk=cat(text_chunk + video_chunk, np.int64),
        token_shot=cat(text_shot + video_shot, np.int64),
        stream_index=cat(text_stream + video_stream, np.int64),
        pos=cat(text_pos + video_pos, np.float32),
    )
