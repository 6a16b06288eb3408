"""Resident memory of this process, for progress lines, iteration logs and benchmarks."""
from __future__ import annotations

import os
import resource


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (bytes)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def current_rss_bytes() -> int:
    """Resident set size of this process now (bytes; Linux ``/proc``, else the peak)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()
