"""Command help that reflows: docstring paragraphs joined into lines the terminal wraps.

Typer (0.29) keeps every line break of a command's docstring after its first paragraph, so
help written at 100 columns printed on an 80-column terminal breaks mid-sentence twice a
line. Each paragraph is joined here once, at registration; list items (`- `, `* `, `1. `)
and indented lines (examples) keep their own lines.
"""

from __future__ import annotations

import inspect
import re

import typer

_OWN_LINE = re.compile(r"^(\s{4,}|\s*[-*] |\d+\. |\x08)")  # \x08: click's no-rewrap mark


def reflow(text: str) -> str:
    """Join the lines of each paragraph of `text` (blank-line separated)."""
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.split("\n"):
            if lines and not _OWN_LINE.match(line):
                lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def reflow_commands(app: typer.Typer) -> None:
    """Reflow the help of every command of `app` and of its sub-apps (call once, last)."""
    for info in app.registered_commands:
        text = info.help or inspect.getdoc(info.callback)
        if text:
            info.help = reflow(text)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_commands(group.typer_instance)
