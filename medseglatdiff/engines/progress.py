"""The training run as a whole: a time budget shared by the stages, one progress bar with ETA, ``progress.png``.

One :class:`TrainingProgress` lives for a whole ``medseg train`` run (the ``progress`` item of
``configs/train.json``); each stage's trainer gets its :meth:`TrainingProgress.stage` handler, which:

1. times the stage's first iterations (after one warm-up iteration) on this machine;
2. with a time budget: gives the stage its share of the budget *left* when it starts (so time an early-stopped
   stage did not use goes to the later ones), sets the stage's epochs from the measured step time, stretches the
   learning-rate schedule to those epochs, stops the stage when its share is spent, and logs the plan and the ETA;
   without a budget: logs the stage's estimated duration and ETA at its planned epochs;
3. advances one progress bar over the whole run (seconds of the budget, or the estimated seconds) and records
   losses, learning rates and validation scores, drawn into ``<output_dir>/progress.png`` (written atomically,
   at most every ``plot_interval`` seconds and when a stage ends).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from medseglatdiff.engines.distributed import is_main_process
from medseglatdiff.errors import MedsegError

logger = logging.getLogger(__name__)

STAGES = ("image_autoencoder", "mask_autoencoder", "denoiser")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"20m"``, ``"1.5h"`` or ``"1h30m"``; None stays None.

    Raises:
        MedsegError: anything else, with the accepted forms.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|min|m|sec|s)?", text)
        if not parts or "".join(n + (u or "") for n, u in parts) != text:
            raise MedsegError(
                f"--time_budget {value!r}: not a duration; use seconds (600) or a unit: 90s, 20m, 1.5h, 1h30m"
            )
        seconds = sum(float(n) * _UNITS[u or "s"] for n, u in parts)
    if seconds <= 0:
        raise MedsegError(f"--time_budget {value!r}: must be a positive duration")
    return seconds


def format_seconds(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _clock_time(offset: float) -> str:
    return time.strftime("%H:%M", time.localtime(time.time() + offset))


class TrainingProgress:
    """The run's budget, overall bar and history (see the module docstring).

    Args:
        output_dir: the fold folder (``progress.png`` goes there).
        time_budget: the run's wall-clock budget (seconds or ``"20m"``), or None.
        shares: each stage's relative share of the budget; stages with share 0 (or not trained) get none.
        calibration_iterations: iterations timed (after one warm-up iteration) to measure a stage's step time.
        plot_interval: shortest time between two ``progress.png`` updates, seconds.
        show_bar: draw the overall progress bar (main process only).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        time_budget: str | float | None = None,
        shares: Mapping[str, float] | None = None,
        calibration_iterations: int = 3,
        plot_interval: float = 30.0,
        show_bar: bool = True,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.budget = parse_duration(time_budget)
        self.shares = {s: float((shares or {}).get(s, 1.0)) for s in STAGES}
        self.calibration_iterations = max(int(calibration_iterations), 1)
        self.plot_interval = float(plot_interval)
        self.started = time.perf_counter()
        self.finished: set[str] = set()
        self.estimates: dict[str, float] = {}
        self.history: dict[str, dict[str, list[tuple[int, float]]]] = {}
        self._offset = 0  # iterations of the stages before the current one (x axis of the plot)
        self._last_plot = 0.0
        self._bar = None
        self._show_bar = bool(show_bar) and is_main_process()

    # ---- budget -----------------------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def allotment(self, stage: str) -> float | None:
        """The seconds ``stage`` may use: its share of the budget left, among itself and the stages after it."""
        if self.budget is None:
            return None
        later = [s for s in STAGES[STAGES.index(stage) :] if s not in self.finished]
        total = sum(self.shares[s] for s in later) or 1.0
        return max(self.budget - self.elapsed, 0.0) * self.shares[stage] / total

    def skip(self, stage: str) -> None:
        """A stage that is not trained (finished earlier, or not needed) leaves its share to the others."""
        self.finished.add(stage)

    def describe(self, trained: Mapping[str, bool], planned: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        """The plan printed before training starts; ``planned``: estimated seconds of each stage's planned epochs."""
        stages = [s for s in STAGES if trained.get(s, True)]
        if self.budget is None:
            if not planned:
                return (
                    "no time budget: each stage runs its planned epochs; its duration and ETA are logged once its "
                    "first iterations are timed (pass --time_budget 20m to fit the run to a budget)"
                )
            total = sum(float(planned[s]["seconds"]) for s in stages if s in planned)
            parts = [
                f"{s.replace('_', ' ')} {planned[s]['epochs']} epochs, {planned[s]['iterations']} iterations "
                f"x {planned[s]['step_s']:.3g} s ~ {format_seconds(float(planned[s]['seconds']))}"
                for s in stages
                if s in planned
            ]
            return (
                f"no time budget: the planned epochs take about {format_seconds(total)} on this machine "
                f"(ETA {_clock_time(total)}): {'; '.join(parts)} (each network's training step timed on a random "
                "batch; data loading and checkpoints come on top, the autoencoder stages may stop earlier). Pass "
                "--time_budget 20m to fit the run to a budget"
            )
        total = sum(self.shares[s] for s in stages) or 1.0
        parts = [
            f"{s.replace('_', ' ')} {100 * self.shares[s] / total:.0f}% "
            f"(~{format_seconds(self.budget * self.shares[s] / total)})"
            for s in stages
        ]
        skipped = [s.replace("_", " ") for s in STAGES if s not in stages]
        return (
            f"time budget {format_seconds(self.budget)} (ETA {_clock_time(self.budget)}): {', '.join(parts)}"
            + (f"; not trained: {', '.join(skipped)}" if skipped else "")
            + ". Each stage times its first iterations, then sets its epochs to fill its share; time a stage leaves "
            "(an early stop) goes to the next ones."
        )

    # ---- bar and history --------------------------------------------------------------------------------------
    def _bar_total(self) -> float:
        if self.budget is not None:
            return self.budget
        return sum(self.estimates.values()) or 1.0

    def _advance(self, stage: str) -> None:
        if not self._show_bar:
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(
                total=round(self._bar_total()),
                desc="training (all stages)",
                unit="s",
                position=1,
                leave=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]",
            )
        self._bar.total = round(max(self._bar_total(), self.elapsed))
        self._bar.n = min(round(self.elapsed), self._bar.total)
        self._bar.set_description(f"training ({stage.replace('_', ' ')})")
        self._bar.refresh()

    def record(self, stage: str, name: str, step: int, value: float) -> None:
        self.history.setdefault(stage, {}).setdefault(name, []).append((int(step), float(value)))

    def plot(self, force: bool = False) -> Path | None:
        """Draw ``progress.png`` (losses, learning rates, validation scores over the run's iterations)."""
        if not is_main_process() or not self.history:
            return None
        now = time.perf_counter()
        if not force and now - self._last_plot < self.plot_interval:
            return None
        self._last_plot = now
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
        for stage, series in self.history.items():
            for name, points in series.items():
                xs, ys = zip(*points)
                ax = axes[0] if name == "loss" else axes[1] if name == "lr" else axes[2]
                ax.plot(
                    xs,
                    ys,
                    label=f"{stage.replace('_', ' ')}" + ("" if name in ("loss", "lr") else f": {name}"),
                    linewidth=1,
                )
        axes[0].set_title("training loss", fontsize=9)
        axes[0].set_yscale("log")
        axes[1].set_title("learning rate", fontsize=9)
        axes[2].set_title("validation (Dice / reconstruction)", fontsize=9)
        for ax in axes:
            ax.set_xlabel("iteration (all stages)", fontsize=8)
            if ax.lines:
                ax.legend(fontsize=6)
        budget = f"budget {format_seconds(self.budget)}, " if self.budget else ""
        fig.suptitle(f"{self.output_dir}: {budget}{format_seconds(self.elapsed)} elapsed", fontsize=8)
        fig.tight_layout()
        self.output_dir.mkdir(parents=True, exist_ok=True)
        target = self.output_dir / "progress.png"
        temporary = target.with_name(f".{target.name}.tmp.png")
        fig.savefig(temporary, dpi=90)
        plt.close(fig)
        os.replace(temporary, target)
        return target

    def close(self) -> None:
        self.plot(force=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def stage(
        self,
        name: str,
        optimizer: Any = None,
        lr_scheduler: Any = None,
        epoch_level_schedule: bool = True,
        evaluator: Any = None,
    ) -> StageProgress:
        """The handler of stage ``name`` (attach it to the stage's trainer); ``evaluator``: whose metrics to record
        too."""
        return StageProgress(self, name, optimizer, lr_scheduler, epoch_level_schedule, evaluator)


class StageProgress:
    """One stage's part of :class:`TrainingProgress`: calibration, epochs from the budget, bar, history."""

    def __init__(
        self,
        run: TrainingProgress,
        stage: str,
        optimizer: Any,
        lr_scheduler: Any,
        epoch_level_schedule: bool,
        evaluator: Any = None,
    ) -> None:
        self.run = run
        self.evaluator = evaluator
        self.stage = stage
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.epoch_level_schedule = epoch_level_schedule
        self.allotted: float | None = None
        self._start = 0.0
        self._first_iteration = 0
        self._timer = 0.0
        self._calibrated = False

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        self.allotted = self.run.allotment(self.stage)
        self._start = time.perf_counter()
        self._first_iteration = int(engine.state.iteration)
        if self.allotted is not None:
            logger.info("stage %s: %s of the time budget left for it", self.stage, format_seconds(self.allotted))

    def _epoch_length(self, engine: Engine) -> int:
        return int(engine.state.epoch_length or 1)

    def _calibrate(self, engine: Engine, seconds_per_iteration: float) -> None:
        length = self._epoch_length(engine)
        done = int(engine.state.iteration)
        if self.allotted is None:
            remaining = max(int(engine.state.max_epochs) * length - done, 0)
            estimate = remaining * seconds_per_iteration
            self.run.estimates[self.stage] = self.run.elapsed + estimate
            logger.info(
                "stage %s: %.3g s per iteration -> %d iterations (%d epochs) take ~%s, ETA %s",
                self.stage,
                seconds_per_iteration,
                remaining,
                engine.state.max_epochs,
                format_seconds(estimate),
                _clock_time(estimate),
            )
            return
        left = max(self.allotted - (time.perf_counter() - self._start), 0.0)
        iterations = done + int(left / max(seconds_per_iteration, 1e-9))
        epochs = max(int(math.ceil(iterations / length)), int(engine.state.epoch) + 1)
        engine.state.max_epochs = epochs
        self._stretch_schedule(epochs, length)
        logger.info(
            "stage %s: %.3g s per iteration -> %d epochs of %d iterations in its %s, ETA %s (whole run %s)",
            self.stage,
            seconds_per_iteration,
            epochs,
            length,
            format_seconds(self.allotted),
            _clock_time(left),
            _clock_time(max((self.run.budget or 0) - self.run.elapsed, 0)),
        )

    def _stretch_schedule(self, epochs: int, length: int) -> None:
        scheduler = self.lr_scheduler
        if scheduler is None:
            return
        if hasattr(scheduler, "total_iters"):  # PolynomialLR stepped per epoch
            scheduler.total_iters = epochs if self.epoch_level_schedule else epochs * length
        schedule = getattr((getattr(scheduler, "lr_lambdas", None) or [None])[0], "schedule", None)
        if schedule is not None and hasattr(schedule, "total"):  # warmup_polynomial_lr stepped per iteration
            schedule.total = epochs * length

    def _iteration(self, engine: Engine) -> None:
        run_iterations = int(engine.state.iteration) - self._first_iteration
        if run_iterations == 1:
            self._timer = time.perf_counter()  # the first iteration is a warm-up
        elif not self._calibrated and run_iterations == 1 + self.run.calibration_iterations:
            self._calibrated = True
            self._calibrate(engine, (time.perf_counter() - self._timer) / self.run.calibration_iterations)
        output = engine.state.output
        loss = output.get("loss") if isinstance(output, Mapping) else None
        if loss is not None:
            value = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
            self.run.record(self.stage, "loss", self.run._offset + int(engine.state.iteration), value)
        if self.optimizer is not None:
            self.run.record(
                self.stage,
                "lr",
                self.run._offset + int(engine.state.iteration),
                float(self.optimizer.param_groups[0]["lr"]),
            )
        self.run._advance(self.stage)
        if self.allotted is not None and self._calibrated and time.perf_counter() - self._start >= self.allotted:
            engine.state.stop_reason = f"its share of the time budget ({format_seconds(self.allotted)}) is spent"
            engine.terminate()

    def _epoch(self, engine: Engine) -> None:
        metrics = dict(engine.state.metrics)
        if self.evaluator is not None and getattr(self.evaluator.state, "epoch", 0) == engine.state.epoch:
            metrics.update(self.evaluator.state.metrics)
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and ("val" in name or "dice" in name):
                self.run.record(
                    self.stage, name.split("/")[-1], self.run._offset + int(engine.state.iteration), float(value)
                )
        self.run.plot()

    def _completed(self, engine: Engine) -> None:
        if self.allotted is not None and self._calibrated and not getattr(engine.state, "stop_reason", None):
            engine.state.stop_reason = (
                f"the {engine.state.max_epochs} epochs fitted to its share of the time budget "
                f"({format_seconds(self.allotted)}) are trained"
            )
        self.run.finished.add(self.stage)
        self.run._offset += int(engine.state.iteration)
        self.run.plot(force=True)
