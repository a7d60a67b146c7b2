"""What every benchmark shares: device and thread setup, medians of timed calls, peak memory, the machine, results.

Peak memory is measured the same way for every method of a benchmark:

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (PyTorch's own allocator count).
- CPU: the process's resident set size (``/proc/self/statm``) sampled every millisecond by a thread during the
  call; the peak above the level at the start is what the call needed (weights already loaded are not counted
  twice). So that successive calls in one process start from a clean level, glibc is told to serve every block of
  64 KiB or more with ``mmap`` (returned to the system when freed; by default the threshold grows up to 32 MiB and
  freed tensors then stay in the heap) and to release free heap memory before each measurement (``malloc_trim``).
  Where ``/proc`` or glibc is missing, ``resource``'s lifetime peak is the (coarser) fallback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from medseglatdiff.errors import MedsegError
from medseglatdiff.io.atomic import atomic_path, write_json_atomic

MIB = float(2**20)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def setup_device(device: str, threads: int | None = 1, seed: int = 0) -> torch.device:
    """The torch device for ``device`` ("cpu", "cuda", "cuda:1"); sets CPU threads and the seed.

    Raises:
        MedsegError: CUDA was asked for but is not available.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MedsegError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    return dev


def parse_with_presets(
    parser: argparse.ArgumentParser, presets: dict[str, dict[str, Any]], argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse ``argv`` after adding ``--preset NAME``: the preset's values become defaults, explicit flags still win.

    A preset is the documented command of one machine kind (``cpu``: this report's CPU run; ``gpu``: the GPU run),
    so a benchmark is reproduced with one short command.
    """
    lines = [
        f"{name}: "
        + " ".join(f"--{k} {' '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in values.items())
        for name, values in presets.items()
    ]
    parser.add_argument(
        "--preset",
        choices=list(presets),
        default=None,
        help="the documented settings of one machine kind (explicit flags override them): " + "; ".join(lines),
    )
    known, _ = parser.parse_known_args(argv)
    if known.preset:
        unknown = [k for k in presets[known.preset] if not any(a.dest == k for a in parser._actions)]
        if unknown:
            raise ValueError(f"preset {known.preset} names unknown options {unknown}")
        parser.set_defaults(**presets[known.preset])
    return parser.parse_args(argv)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCKS = ("wall", "process")


def clock(name: str, device: torch.device) -> Callable[[], float]:
    """``"wall"``: ``time.perf_counter``; ``"process"``: ``time.process_time``, this process's CPU seconds.

    On a CPU shared with other jobs, CPU seconds measure the work a method needs without the time spent waiting
    for a core (with one PyTorch thread they equal the wall-clock time of an idle machine). A GPU's work is not
    CPU time, so CUDA runs use the wall clock.

    Raises:
        MedsegError: ``"process"`` with a CUDA device, or an unknown name.
    """
    if name not in CLOCKS:
        raise MedsegError(f"--clock {name!r}: choose one of {', '.join(CLOCKS)}")
    if name == "process" and device.type == "cuda":
        raise MedsegError("--clock process measures CPU time, not GPU work; use --clock wall with --device cuda")
    return time.perf_counter if name == "wall" else time.process_time


def time_call(
    fn: Callable[[], Any], device: torch.device, repeats: int = 3, warmup: int = 1, clock_name: str = "wall"
) -> list[float]:
    """Seconds (see :func:`clock`) of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls (device
    synchronised)."""
    now = clock(clock_name, device)
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        synchronize(device)
        times.append(now() - start)
    return times


def measure_calls(
    calls: dict[str, Callable[[], Any]],
    device: torch.device,
    repeats: int = 3,
    warmup: int = 1,
    max_point_s: float | None = None,
    clock_name: str = "wall",
) -> dict[str, dict[str, Any]]:
    """Peak memory of the first call of each, then up to ``repeats`` timed calls of each, interleaved.

    Interleaving (a, b, a, b, ...) exposes every method to the same background load, so their ratio stays
    meaningful on a shared machine. The first call of each (a warm-up when ``warmup > 0``) runs under
    :class:`PeakMemory`. A method stops repeating once its calls have taken ``max_point_s`` in total.
    Returns per name: ``times_s``, ``median_s``, ``repeats``, ``peak_mib``, ``memory_method``.
    """
    now = clock(clock_name, device)
    out = {name: {"times_s": [], "peak_mib": 0.0, "memory_method": ""} for name in calls}
    spent = dict.fromkeys(calls, 0.0)
    for round_index in range(warmup + repeats):
        for name, fn in calls.items():
            timed = round_index >= warmup
            if timed and max_point_s is not None and out[name]["times_s"] and spent[name] >= max_point_s:
                continue
            with PeakMemory(device) if round_index == 0 else contextlib.nullcontext() as memory:
                synchronize(device)
                start = now()
                fn()
                synchronize(device)
                seconds = now() - start
            if memory is not None:
                out[name].update(peak_mib=round(memory.peak_mib, 1), memory_method=memory.method)
            spent[name] += seconds
            if timed:
                out[name]["times_s"].append(round(seconds, 4))
    for entry in out.values():
        entry["median_s"] = round(median(entry["times_s"]), 4)
        entry["repeats"] = len(entry["times_s"])
    return out


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def _glibc() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_freed_memory(mmap_threshold: int | None = 64 * 1024) -> bool:
    """glibc only: fix the mmap threshold (large blocks go back to the system when freed) and trim the heap."""
    libc = _glibc()
    if libc is None:
        return False
    if mmap_threshold:
        libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))
    libc.malloc_trim(0)
    return True


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Context manager measuring the peak memory a block needs above its starting level (see the module doc).

    Attributes after the block: ``peak_bytes`` (above the start), ``start_bytes``, ``method``.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.001) -> None:
        self.device = device
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.start_bytes = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._max = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes() or 0
            self._max = max(self._max, rss)
            time.sleep(self.interval_s)

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type != "cuda":
            release_freed_memory()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
        elif _rss_bytes() is not None:
            self.start_bytes = self._max = _rss_bytes() or 0
            self.method = "resident set size sampled every ms (/proc/self/statm)"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self.start_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.method = "resource ru_maxrss growth (lifetime peak: coarse)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = max(torch.cuda.max_memory_allocated(self.device) - self.start_bytes, 0)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, _rss_bytes() or 0)
            self.peak_bytes = max(self._max - self.start_bytes, 0)
        else:
            self.peak_bytes = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.start_bytes, 0)

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB


def parameter_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers of ``modules``."""
    return sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    import monai

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
    return info


def write_results(path: str | os.PathLike, results: dict[str, Any]) -> Path:
    """Write the results JSON atomically (creating folders) and return its path."""
    return write_json_atomic(path, results)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MedsegError(f"{path}: no results file; run the benchmark first (see docs/benchmarks.md)")
    return json.loads(path.read_text(encoding="utf-8"))


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically as a small PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(figure)
    return Path(path)


def pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
