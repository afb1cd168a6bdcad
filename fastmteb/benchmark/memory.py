"""Peak memory of an encode: CUDA's allocator peak, or the process's peak resident set size
read from /proc (Linux), sampled by a thread where /proc cannot reset its peak."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch


_PROC_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def proc_status_kib(field_name: str) -> int | None:
    """``field_name`` (e.g. "VmRSS", "VmHWM") of /proc/self/status in KiB; None where absent."""
    try:
        match = re.search(rf"^{field_name}:\s+(\d+)\s+kB", _PROC_STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset Linux's peak-RSS counter (VmHWM) to the current RSS; False where not possible."""
    try:
        with open(_CLEAR_REFS, "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return proc_status_kib("VmHWM") is not None


def _current_rss_bytes() -> int | None:
    kib = proc_status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil absent or unsupported platform
        return None


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so the next
    configuration's RSS baseline does not carry the previous one's freed buffers."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _RssSampler(threading.Thread):
    """Fallback where VmHWM cannot be reset: poll the RSS every ``interval_s`` and keep the max
    (misses spikes shorter than the interval)."""

    def __init__(self, interval_s: float = 0.002) -> None:
        super().__init__(daemon=True, name="fastmteb-rss-sampler")
        self.interval_s = interval_s
        self.peak = _current_rss_bytes() or 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _current_rss_bytes() or 0)
            self._stop_event.wait(self.interval_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _current_rss_bytes() or 0)
        return self.peak


@dataclass
class MemoryReading:
    """Peak memory of one measured region (bytes; None where not measurable).

    ``rss_peak``: the process's peak resident set size in the region (model weights, Python and
    libraries included); ``rss_delta = rss_peak - rss_start`` is what the region added on top of
    what was resident when it began (a lower bound on its working memory, since pages freed earlier
    and still held by the allocator are reused). ``cuda_peak``: ``max_memory_allocated`` in the
    region; ``cuda_delta = cuda_peak - memory_allocated at start`` (the activations, the weights
    excluded).
    """

    rss_method: str
    rss_start: int | None = None
    rss_peak: int | None = None
    cuda_start: int | None = None
    cuda_peak: int | None = None

    @property
    def rss_delta(self) -> int | None:
        return None if self.rss_peak is None or self.rss_start is None else self.rss_peak - self.rss_start

    @property
    def cuda_delta(self) -> int | None:
        return None if self.cuda_peak is None or self.cuda_start is None else self.cuda_peak - self.cuda_start

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rss_delta": self.rss_delta, "cuda_delta": self.cuda_delta}


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[MemoryReading]:
    """Measure the peak memory of the ``with`` body (see ``MemoryReading``).

    CPU: Linux ``VmHWM`` reset via ``/proc/self/clear_refs`` (exact, kernel-tracked) when the
    kernel allows it; else a 2 ms RSS sampling thread (``rss_method`` says which). CUDA: the
    caching allocator's ``max_memory_allocated`` after ``reset_peak_memory_stats``.
    """
    _release_freed_memory()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    exact = reset_peak_rss()
    reading = MemoryReading(rss_method="vmhwm-reset" if exact else "sampled-2ms")
    reading.rss_start = _current_rss_bytes()
    reading.cuda_start = torch.cuda.memory_allocated(device) if cuda else None
    sampler = None if exact else _RssSampler()
    if sampler is not None:
        sampler.start()
    try:
        yield reading
    finally:
        if cuda:
            torch.cuda.synchronize(device)
            reading.cuda_peak = torch.cuda.max_memory_allocated(device)
        if sampler is not None:
            reading.rss_peak = sampler.stop() if reading.rss_start is not None else None
        else:
            kib = proc_status_kib("VmHWM")
            reading.rss_peak = kib * 1024 if kib is not None else None
