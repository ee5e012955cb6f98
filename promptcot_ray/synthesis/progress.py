"""Live progress of a synthesis round: one line, refreshed in place, while a wave runs.

The driver is busy inside Ray Data while a wave runs, so a daemon thread polls `results/`
every few seconds and reads only the files that appeared since its last look (four columns,
one concurrent read): accepted so far against the target, the accept rate, combinations done
in this wave and an ETA. On a terminal the line is redrawn in place (rich Live); in a log
(a Ray job, CI) it is written as a log line every `log_every_s`, and once more when the wave
ends. The numbers are the ones the round's summary and stats.json report at the end (same
columns, same rule); they move as result files are written, one per block reaching the sink
(a small round can be a single block, counted by the last look when the wave ends).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pyarrow.compute as pc
from rich.console import Console
from rich.live import Live
from rich.text import Text

from promptcot_ray import records as R
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

_COLUMNS = ["combination_id", R.STATUS, "accepted"]


@dataclass
class Snapshot:
    """What the round's results say at one moment."""

    accepted: int
    decided: int
    wave_done: int
    wave_size: int
    target: int | None
    seconds: float

    def line(self, round_index: int, wave: int | None) -> str:
        rate = f"{self.accepted / self.decided:.1%}" if self.decided else "-"
        goal = (
            f"{self.accepted:,}/{self.target:,} accepted"
            if self.target
            else (f"{self.accepted:,} accepted")
        )
        return (
            f"round {round_index}"
            + (f" wave {wave}" if wave else "")
            + f": {goal} (rate {rate} of {self.decided:,} decided) | "
            f"{self.wave_done:,}/{self.wave_size:,} combinations of this pass | ETA {self.eta()}"
        )

    def eta(self) -> str:
        """Time left in this pass at its speed so far (a quota round's last wave is sized to
        end near its target)."""
        if self.seconds <= 0 or not self.wave_done:
            return "-"
        left = (self.wave_size - self.wave_done) * self.seconds / self.wave_done
        return _duration(left)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class RoundProgress:
    """Polls a round's results folder and shows the progress line (use as a context)."""

    def __init__(
        self,
        run: RunDir,
        results_dir: str,
        round_index: int,
        wave: int | None,
        wave_size: int,
        target: int | None,
        interval_s: float = 5.0,
        log_every_s: float = 60.0,
        console: Console | None = None,
    ) -> None:
        self.run, self.results_dir = run, results_dir
        self.round_index, self.wave, self.wave_size, self.target = (
            round_index,
            wave,
            wave_size,
            target,
        )
        self.interval_s, self.log_every_s = interval_s, log_every_s
        self.console = console or Console(stderr=True)
        self._seen: set[str] = set()
        self._accepted = self._decided = 0
        self._before = -1  # decided rows already there when the wave started
        self._started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> Snapshot:
        """Count the result files that appeared since the last poll."""
        files = self.run.list_files(self.results_dir, ".parquet")
        new = [f for f in files if f not in self._seen]  # names only: no file is opened
        if new:
            t = self.run.read_files(new, _COLUMNS)
            done = t.filter(pc.not_equal(t[R.STATUS], R.STATUS_ERROR))
            self._decided += done.num_rows
            self._accepted += int(pc.sum(pc.fill_null(done["accepted"], False)).as_py() or 0)
            self._seen.update(new)
        if self._before < 0:
            self._before = self._decided
        return Snapshot(
            self._accepted,
            self._decided,
            self._decided - self._before,
            self.wave_size,
            self.target,
            time.time() - self._started,
        )

    def _loop(self) -> None:
        live = Live(Text(""), console=self.console, transient=False, auto_refresh=False)
        terminal = self.console.is_terminal
        last_log = 0.0
        if terminal:
            live.start()
        try:
            while True:
                # one last look after the wave ends: the line left behind says what was
                # committed, not what the previous poll saw (a small round is one block)
                final = self._stop.is_set()
                try:
                    line = self.poll().line(self.round_index, self.wave)
                except Exception as err:  # a progress line must never break the round
                    logger.debug("progress poll failed: %s", err)
                    line = None
                if line and terminal:
                    live.update(Text(line), refresh=True)
                elif line and (final or time.time() - last_log >= self.log_every_s):
                    logger.info("%s", line)
                    last_log = time.time()
                if final:
                    break
                self._stop.wait(self.interval_s)
        finally:
            if terminal:
                live.stop()

    def __enter__(self) -> RoundProgress:
        self.poll()  # what earlier runs and waves left: counted, not part of this wave
        self._thread = threading.Thread(target=self._loop, name="round-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:  # it wakes at once, polls once more and ends
            self._thread.join(timeout=self.interval_s + 30)
