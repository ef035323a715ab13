"""Errors that reach the user as one clear line (the CLI prints them and exits 2)."""

from __future__ import annotations

import functools
from pathlib import Path

import pydantic


class InputError(Exception):
    """Bad user input: a file that is missing, malformed or semantically invalid.

    `where` names the file (and field, when known) so the one-line message says exactly
    what to fix.
    """

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        super().__init__(self.one_line())

    def __reduce__(self):
        # rebuilt with its keywords when a parallel worker (hetplan.parallel) raises it
        return (functools.partial(type(self), file=self.file, field=self.field), (self.message,),
                self.__dict__)

    def one_line(self) -> str:
        where = ""
        if self.file and self.field:
            where = f"{self.file}: {self.field}: "
        elif self.file:
            where = f"{self.file}: "
        elif self.field:
            where = f"{self.field}: "
        return f"{where}{self.message}"


def from_validation_error(err: pydantic.ValidationError, *, file: str | Path | None,
                          prefix: str = "") -> InputError:
    """Condense a pydantic ValidationError into one InputError naming the first bad field."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
    if prefix:
        loc = f"{prefix}.{loc}" if loc else prefix
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    more = len(err.errors()) - 1
    if more > 0:
        msg += f" (and {more} more error{'s' if more > 1 else ''})"
    return InputError(msg, file=file, field=loc or None)


class Infeasible(Exception):
    """No plan meets the scenario; `reasons` say which constraints bind and by how much.

    Raised by sizing (the planner), placement and the repair loop alike, so it lives here,
    below every stage (the CLI prints the reasons and exits 3)."""

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("infeasible: " + " | ".join(reasons))

    def __reduce__(self):
        # (its reasons are a list: Exception's default would pass the joined line)
        return type(self), (self.reasons,), self.__dict__
