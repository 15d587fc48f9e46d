"""Where a command's answer goes: a readable rich table, or one JSON document with ``--json``.

A command builds its answer once as plain data and gives a renderer for people; :class:`Output`
picks one. Nothing else writes to stdout, so ``--json`` output always parses.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

#: Width used when stdout is not a terminal (a pipe, a file): wide enough for dotted keys.
PIPE_WIDTH = 140

Renderer = Callable[["Console"], None]


class Output:
    """Writes a command's answer to stdout, as JSON or for people.

    Args:
        json_mode: Write one JSON document instead of tables.
        stream: Where to write (stdout by default).
    """

    def __init__(self, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stream = stream if stream is not None else sys.stdout
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """A rich console on the output stream (made on first use: rich is imported only then)."""
        if self._console is None:
            from rich.console import Console

            terminal = self.stream.isatty()
            self._console = Console(
                file=self.stream, highlight=False, soft_wrap=True, width=None if terminal else PIPE_WIDTH
            )
        return self._console

    def emit(self, data: Any, render: Renderer) -> None:
        """Write ``data`` as JSON in JSON mode, else call ``render`` with the console."""
        if self.json_mode:
            self.stream.write(json.dumps(data, indent=2, default=_json_default) + "\n")
            self.stream.flush()
        else:
            render(self.console)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], **kwargs: Any) -> Table:
    """A rich table; ``None`` cells show as ``-`` and long keys wrap instead of being cut."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_edge=False, header_style="bold", **kwargs)
    for name in columns:
        t.add_column(name, overflow="fold")
    for row in rows:
        t.add_row(*("-" if cell is None else str(cell) for cell in row))
    return t


def pairs(rows: Iterable[tuple[str, Any]]) -> Text:
    """``field  value`` lines, names aligned and bold, empty values skipped (no trailing padding)."""
    from rich.text import Text

    kept = [(name, _cell(value)) for name, value in rows if value not in (None, "", [], {}, ())]
    width = max((len(name) for name, _ in kept), default=0)
    text = Text()
    for i, (name, value) in enumerate(kept):
        text.append(name.ljust(width), style="bold")
        text.append(f"  {value}" + ("\n" if i < len(kept) - 1 else ""))
    return text


def human_bytes(n: int | None) -> str | None:
    """``44774412`` → ``"44.8 MB"`` (:func:`weightport.units.format_bytes`: one unit system everywhere)."""
    from weightport.units import format_bytes

    return None if n is None else format_bytes(n)


def human_count(n: int) -> str:
    """``11689512`` → ``"11.69 M"``; small numbers stay exact."""
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= limit:
            return f"{n / limit:.2f} {unit}"
    return str(n)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)
