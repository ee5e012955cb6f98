"""Stage begin/commit: the completion-marker protocol every job follows, written once.

A stage folder (e.g. `distill`, `concepts/pool`, `eval/<name>`) is complete only while its
`_SUCCESS.json` exists. `begin` deletes the marker before any output is rewritten, so a run
killed half-way never leaves a stage that looks complete over partial outputs; `commit`
writes it last (S3 has no atomic rename: the marker is the commit) with the config hash,
the counts and the package version. `why_not_done` is the pipeline's done-check: a stage is
skipped only when its marker exists *and* holds the hash of the config it would run now.
"""

from __future__ import annotations

import json
import posixpath
from importlib import metadata
from typing import Any

from promptcot_ray.records import now_iso
from promptcot_ray.storage import SUCCESS_MARKER, RunDir

PACKAGE = "promptcot-ray"
HASH_KEY = "config_hash"
# Markers written before this module spelled the hash `config` (synthesis rounds still do).
_OLD_HASH_KEY = "config"

NOT_COMPLETE = "not complete"
NO_HASH = "marker holds no config hash"
UNREADABLE = "marker unreadable"
CONFIG_CHANGED = "config changed"


def package_version() -> str:
    """The installed promptcot-ray version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def marker_path(stage: str) -> str:
    return posixpath.join(stage, SUCCESS_MARKER)


def begin(run: RunDir, stage: str) -> None:
    """Call before a stage's outputs change: from here on the stage is not complete."""
    run.delete_file(marker_path(stage))


def commit(
    run: RunDir, stage: str, cfg_hash: str, counts: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """Call last, after every output and the ledger are written; returns the marker."""
    info = {
        **extra,
        HASH_KEY: cfg_hash,
        "counts": counts,
        "package_version": package_version(),
        "written_at": now_iso(),
    }
    run.mark_complete(stage, info)
    return info


def read(run: RunDir, stage: str) -> dict[str, Any] | None:
    """The stage's marker; None when there is none."""
    if not run.is_complete(stage):
        return None
    return run.read_json(marker_path(stage))


def stored_hash(marker: dict[str, Any]) -> str | None:
    return marker.get(HASH_KEY, marker.get(_OLD_HASH_KEY))


def why_not_done(run: RunDir, stage: str, cfg_hash: str) -> str | None:
    """None when `stage` is complete for the config hashed `cfg_hash`, else the reason."""
    try:
        marker = read(run, stage)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return UNREADABLE  # fail closed: a marker that cannot be read completes nothing
    if marker is None:
        return NOT_COMPLETE
    if not isinstance(marker, dict) or stored_hash(marker) is None:
        return NO_HASH
    if stored_hash(marker) != cfg_hash:
        return CONFIG_CHANGED
    return None
