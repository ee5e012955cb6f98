"""How every command ends on a user's mistake: one red line on stderr and exit 2."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    """Print `error: message` and exit 2 (never a traceback for a user's mistake)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)
