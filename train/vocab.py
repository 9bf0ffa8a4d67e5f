"""The world's vocabulary and the word-level tokenizer (shipped to the studio as vocab.json).

Captions are lower-cased and split into words and the punctuation marks '.' and ','; the
word "close-up" is one token. Every caption is padded to a fixed length with `<pad>` (id 0);
an all-`<pad>` caption is the null caption used for classifier-free guidance. Words outside the
vocabulary are never dropped silently: `encode` returns them so the caller can report them, and
maps each to `<unk>` (id 1).
"""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Sequence

# ---- the world's nouns, shared with world.py / render.py (order is part of the vocab) ----
SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
COLOURS = {  # captioned colour name -> body RGB
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (245, 215, 40),
    "green": (60, 185, 70),
    "blue": (45, 95, 225),
    "purple": (145, 65, 205),
    "pink": (245, 125, 195),
    "white": (245, 245, 245),
}
PATTERNS = ("solid", "striped", "dotted", "checkered")  # never captioned
# World v2 (world.py, version=2): patch-scale patterns drawn in a hidden second colour, and two
# clearly separate size classes. Never captioned, except under --oracle-captions (ORACLE_WORDS).
PATTERNS_V2 = ("solid", "halved", "banded", "cored")
SIZE_WORDS = ("small", "large")
ACTIONS = ("moves left", "moves right", "bounces", "spins", "grows", "stays")
FRAMINGS = ("wide", "close-up")
LOCATIONS = ("meadow", "beach", "desert", "forest", "city", "snow")
PREPOSITION = {"meadow": "in", "beach": "on", "desert": "in", "forest": "in", "city": "in", "snow": "in"}
MAX_CAST = 3

PAD, UNK = "<pad>", "<unk>"
_FUNCTION_WORDS = ("character", "is", "a", "an", "and", "in", "on", "the", "nobody", ".", ",")


def oracle_words() -> List[str]:
    """Words only the oracle vocabulary has (size classes, every pattern), appended after v1's."""
    return list(SIZE_WORDS) + list(dict.fromkeys(PATTERNS + PATTERNS_V2))


def build_words(oracle: bool = False) -> List[str]:
    """The vocabulary in id order. Changing it changes every checkpoint's text embedding.
    oracle=True appends oracle_words() (the v1 ids stay as they are)."""
    words: List[str] = [PAD, UNK]
    words += list(_FUNCTION_WORDS)
    words += [str(i) for i in range(1, MAX_CAST + 1)]
    words += list(COLOURS)
    words += list(SHAPES)
    for action in ACTIONS:
        for w in action.split():
            if w not in words:
                words.append(w)
    words += list(LOCATIONS)
    words += list(FRAMINGS)
    if oracle:
        words += oracle_words()
    assert len(set(words)) == len(words)
    return words


_TOKEN_RE = re.compile(r"close-up|[^\s.,]+|[.,]")


def split_words(text: str) -> List[str]:
    """Lower-case and split a caption into words and punctuation ('.', ',')."""
    return _TOKEN_RE.findall(text.lower())


class Encoded(NamedTuple):
    ids: List[int]  # length == the requested length (padded with 0)
    unknown: List[str]  # words not in the vocabulary, in order of appearance
    length: int  # number of real (non-pad) tokens before truncation checks


class CaptionTooLong(ValueError):
    pass


class Vocab:
    """Word <-> id mapping. `Vocab().words` is what vocab.json holds."""

    def __init__(self, words: Sequence[str] | None = None, oracle: bool = False):
        self.words: List[str] = list(words) if words is not None else build_words(oracle)
        self.index: Dict[str, int] = {w: i for i, w in enumerate(self.words)}
        self.pad_id = self.index[PAD]
        self.unk_id = self.index[UNK]

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, length: int) -> Encoded:
        """Tokenize `text` into exactly `length` ids. Raises CaptionTooLong if it does not fit."""
        words = split_words(text)
        if len(words) > length:
            raise CaptionTooLong(f"caption has {len(words)} tokens, the limit is {length}: {text!r}")
        ids = [self.index.get(w, self.unk_id) for w in words]
        unknown = [w for w in words if w not in self.index]
        return Encoded(ids + [self.pad_id] * (length - len(ids)), unknown, len(words))

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.words[i] for i in ids if i != self.pad_id)

    def to_json(self) -> dict:
        return {
            "version": 1,
            "pad": PAD,
            "unk": UNK,
            "lowercase": True,
            "split": _TOKEN_RE.pattern,
            "words": self.words,
        }
