"""Allocator settings for a server process that the server owns (``run``,
not ``LocalServer`` inside someone else's process).

Each piece of a large request body is a fresh bytes object of about 1 MiB
(the HTTP parser's copy). With glibc's defaults such blocks are mapped and
unmapped, or the heap is grown and trimmed, over and over: a 256 MiB PUT
took about 7,000 page faults and 20% longer than with the thresholds below
(``benchmarks/FINDINGS.md``). Keeping up to 16 MiB of freed memory for
reuse costs at most that much resident memory per process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["tune_allocator"]

logger = logging.getLogger("django_objectstore.server")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Freed memory at the top of the heap kept rather than returned.
TRIM_THRESHOLD = 16 * 1024 * 1024
#: Blocks at least this big get their own mapping (glibc's default moves
#: between 128 KiB and 32 MiB as blocks are freed).
MMAP_THRESHOLD = 4 * 1024 * 1024


def tune_allocator() -> bool:
    """Set the thresholds above where the C library is glibc; True if set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt): its defaults stay
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    logger.debug("allocator thresholds %s", "set" if done else "not set")
    return done
