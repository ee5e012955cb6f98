"""The two kinds of failure the CLI tells apart: a user's mistake and a stop request.

A `UserError` is something the user fixes (a config key, a path, a column, a busy run
directory): the CLI prints its one-line message and exits 2, with no traceback. Anything
else is a bug in this code and keeps its traceback. `Interrupted` is a SIGTERM or Ctrl-C
turned into an exception in the main thread, so the job unwinds (Ray shut down, lease
released) and the user is told how to resume.
"""

from __future__ import annotations

import signal


class UserError(Exception):
    """A mistake in the user's config, inputs or environment; the message names the fix."""


class Interrupted(KeyboardInterrupt):
    """The job was asked to stop (SIGTERM, SIGINT, a lost lease).

    A KeyboardInterrupt, not an Exception: broad `except Exception` blocks around engine
    or trainer calls must not swallow a stop request, and Ray Data stops its executor on it.
    """

    def __init__(self, signum: int, reason: str) -> None:
        super().__init__(reason)
        self.signum = signum
        self.reason = reason

    @property
    def exit_code(self) -> int:
        """128 + signal number, as a shell reports a process a signal ended."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name
