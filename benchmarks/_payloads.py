"""Deterministic benchmark payloads, written to files.

* ``text``: pseudo-random words drawn from a fixed vocabulary, with numbers and
  punctuation mixed in, so zstd (level 3, the clients' default) compresses it to
  about 0.35 of its size. It never repeats a long block, so no compressor setting
  (window size, long-distance matching) can make it look more compressible than
  it is.
* ``random``: bytes from a seeded PRNG; incompressible.

The same (kind, size, seed) always gives the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["small_payload", "write_payload", "zstd_ratio"]

_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
# English letter frequencies, per cent.
_WEIGHTS = [
    12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
    2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1,
]  # fmt: skip
_VOCAB_WORDS = 3000
_VOCAB_NUMBERS = 300
_BLOCK_WORDS = 65536
_RANDOM_BLOCK = 16 << 20


def _vocabulary(rng: random.Random) -> list[bytes]:
    words = [
        "".join(rng.choices(_LETTERS, _WEIGHTS, k=rng.randint(2, 10))).encode()
        for _ in range(_VOCAB_WORDS)
    ]
    numbers = [str(rng.randint(0, 10 ** rng.randint(1, 7))).encode() for _ in range(_VOCAB_NUMBERS)]
    punctuated = [w + p for w in words[:400] for p in (b",", b".", b".\n")]
    return words + numbers + punctuated


def write_payload(path: Path, kind: str, size: int, seed: int = 20261124) -> Path:
    """Write ``size`` bytes of ``kind`` ("text" or "random") to ``path``."""
    rng = random.Random(f"{kind}:{seed}")
    written = 0
    with path.open("wb") as out:
        if kind == "text":
            vocab = _vocabulary(rng)
            while written < size:
                block = b" ".join(rng.choices(vocab, k=_BLOCK_WORDS)) + b"\n"
                block = block[: size - written]
                out.write(block)
                written += len(block)
        elif kind == "random":
            while written < size:
                n = min(_RANDOM_BLOCK, size - written)
                out.write(rng.randbytes(n))
                written += n
        else:
            raise ValueError(f"unknown payload kind {kind!r}: expected 'text' or 'random'")
    return path


def small_payload(size: int, seed: int = 7) -> bytes:
    """A small text-like payload (for the small-object scenarios)."""
    rng = random.Random(f"small:{seed}")
    vocab = _vocabulary(rng)
    out = b""
    while len(out) < size:
        out += b" ".join(rng.choices(vocab, k=256)) + b"\n"
    return out[:size]


def zstd_ratio(path: Path, level: int = 3) -> float:
    """Compressed size / original size of the file at ``path`` with zstd ``level``."""
    import zstandard

    cctx = zstandard.ZstdCompressor(level=level)
    total = 0
    compressed = 0
    with path.open("rb") as src:
        chunker = cctx.chunker(chunk_size=1 << 20)
        while block := src.read(4 << 20):
            total += len(block)
            for chunk in chunker.compress(block):
                compressed += len(chunk)
        for chunk in chunker.finish():
            compressed += len(chunk)
    return compressed / total if total else 0.0
