"""The send's progress bar on stderr: done of total, sent/failed/skipped/in-doubt counts, and messages per second.

One process's deliverer advances it (`advance`); with several workers the store's counts set it (`show`, from
`digest.send.watch`).
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class RichProgress:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.counts = {"sent": 0, "failed": 0, "skipped": 0, "in_doubt": 0}
        self._bar = Progress(
            TextColumn("[bold]sending[/bold]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=self.console, transient=False,
        )
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("send", total=total, counts=self._counts(), rate="")

    def advance(self, *, sent: int = 0, failed: int = 0, skipped: int = 0, in_doubt: int = 0) -> None:
        for name, n in (("sent", sent), ("failed", failed), ("skipped", skipped), ("in_doubt", in_doubt)):
            self.counts[name] += n
        if self._task is None:
            return
        self._bar.advance(self._task, sent + failed + skipped + in_doubt)
        self._bar.update(self._task, counts=self._counts(), rate=self._rate())

    def show(self, done: int, counts: Mapping[str, int]) -> None:
        """Every worker's numbers so far, as read from the store: they replace the bar's, they do not add up."""
        for name in self.counts:
            self.counts[name] = counts.get(name, 0)
        if self._task is None:
            return
        # Setting `completed` records a speed sample like `advance` does, so the rate is every worker's together.
        self._bar.update(self._task, completed=done, counts=self._counts())
        self._bar.update(self._task, rate=self._rate())

    def _rate(self) -> str:
        speed = self._bar.tasks[0].speed if self._bar.tasks else None
        return f"{speed:,.0f} msg/s" if speed else ""

    def _counts(self) -> str:
        c = self.counts
        return f"sent {c['sent']} · failed {c['failed']} · skipped {c['skipped']} · in doubt {c['in_doubt']}"

    def finish(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None
