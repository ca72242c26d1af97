"""What the commands share: the consoles, failing with a message, progress bars, Ctrl-C, and
drawing :class:`divplugin.core.table.Table` rows."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=True)
out_console = Console()


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def interruptible(note: str):
    """Ctrl-C or SIGTERM inside: say what was kept (``note``) and exit with status 130."""
    try:
        yield
    except KeyboardInterrupt:
        console.print(f"[red]interrupted[/]: {note}", highlight=False)
        raise typer.Exit(130) from None


def progress_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def settings_options(cls: Any, skip: tuple[str, ...] = (), short: dict[str, str] | None = None) -> Callable:
    """Give a command one ``--name`` option per setting of ``cls`` (its type, default and
    description), collected into the command's ``settings`` argument as a dict: the options
    are built from the settings' one declaration, never written out again."""
    import functools
    import inspect

    fields = {n: info for n, info in cls.fields().items() if n not in skip}

    def wrap(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "settings"]
        for name, info in fields.items():
            flags = [f"--{name.replace('_', '-')}", *([short[name]] if short and name in short else [])]
            params.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=info.annotation,
                    default=typer.Option(info.default, *flags, help=info.description),
                )
            )

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            return fn(**{k: v for k, v in kwargs.items() if k not in fields}, settings={k: kwargs[k] for k in fields})

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap


def show(tables: list) -> None:
    """Draw :class:`divplugin.core.table.Table` rows in the terminal."""
    for t in tables:
        table = Table(title=t.title or None, caption=t.caption or None)
        for i, col in enumerate(t.columns):
            table.add_column(col, justify="left" if i in t.left else "right", no_wrap=i == 0)
        for row in t.rows:
            table.add_row(*row)
        out_console.print(table)
