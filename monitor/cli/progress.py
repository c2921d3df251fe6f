"""Progress for long commands: a live bar on a terminal, plain lines anywhere else.

A live bar redraws one line in place; in a log file, a pipe or CI there is no line to redraw, so
rich shows nothing until the end, and a command that trains for twenty minutes looks hung. Off a
terminal the same updates come out as plain lines instead: one when a stage starts, at every tenth
of the way, when it is done, and at least every ``every_seconds`` while it runs.

Both displays take the same calls (``add_task`` and ``update``, as ``rich.progress.Progress``) and
write to standard error, so standard output holds only results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from monitor.cli.common import error_console


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0
    fields: dict[str, Any] = field(default_factory=dict)
    printed_tenth: int = -1
    printed_at: float | None = None
    printed_done: bool = False


class PlainProgress:
    """Progress as plain lines, for output that is not a terminal."""

    def __init__(
        self,
        stream: IO[str],
        *,
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._every_seconds = every_seconds
        self._clock = clock
        self._tasks: list[_Task] = []

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.flush()

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> TaskID:
        self._tasks.append(_Task(description=description, total=total, fields=fields))
        return TaskID(len(self._tasks) - 1)

    def update(
        self,
        task_id: TaskID,
        *,
        description: str | None = None,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        **fields: Any,
    ) -> None:
        task = self._tasks[task_id]
        new_stage = description is not None and description != task.description
        if description is not None and new_stage:
            task.description, task.printed_tenth, task.printed_done = description, -1, False
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        if advance is not None:
            task.completed += advance
        task.fields.update(fields)
        if self._worth_a_line(task, new_stage):
            self._print(task)

    def _worth_a_line(self, task: _Task, new_stage: bool) -> bool:
        now = self._clock()
        if new_stage or task.printed_at is None:
            return True
        if task.total:
            if task.completed >= task.total:
                return not task.printed_done
            if int(10 * task.completed / task.total) > task.printed_tenth:
                return True
        return now - task.printed_at >= self._every_seconds

    def _print(self, task: _Task) -> None:
        count = f"{task.completed:g}/{task.total:g}" if task.total else f"{task.completed:g}"
        detail = str(task.fields.get("detail") or "")
        self._stream.write(f"{task.description}: {count}{' ' + detail if detail else ''}\n")
        self._stream.flush()
        task.printed_at = self._clock()
        if task.total:
            task.printed_tenth = int(10 * task.completed / task.total)
            task.printed_done = task.completed >= task.total


def progress_display(console: Console = error_console) -> Progress | PlainProgress:
    """A live bar when ``console`` is a terminal, plain progress lines otherwise."""
    if not console.is_terminal:
        return PlainProgress(console.file)
    return Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )
