"""Shell rendering: every value through shlex.quote, one flag per continuation line.

`command_lines` and `parse_command` are inverses on the emitted text (the tests rely on it):
a command is `env K=V ... PROGRAM ARGS`, optionally followed by a redirection that
`parse_command` drops. Comments go through `comment`, which no value can end early.
"""

from __future__ import annotations

import hashlib
import re
import shlex

from hetplan.bounds import escape_control

HEADER = "#!/usr/bin/env bash\n"


def command_lines(program: list[str], argv: list[str], env: dict[str, str] | None = None,
                  suffix: str = "") -> list[str]:
    """`env K=V ... program argv...` as continuation lines; `--flag value` pairs share one."""
    first = []
    if env:
        first = ["env"] + [f"{k}={v}" for k, v in sorted(env.items())]
    head = shlex.join(first + program + argv[:1] if argv and not argv[0].startswith("--")
                      else first + program)
    rest = argv[1:] if argv and not argv[0].startswith("--") else argv
    groups: list[list[str]] = []
    for tok in rest:
        if tok.startswith("--") or not groups:
            groups.append([tok])
        else:
            groups[-1].append(tok)
    lines = [head] + ["  " + shlex.join(g) for g in groups]
    out = [ln + " \\" for ln in lines[:-1]] + [lines[-1] + (f" {suffix}" if suffix else "")]
    return out


def parse_command(text: str) -> tuple[dict[str, str], list[str]]:
    """The (env, argv) of one rendered command (argv starts with the program)."""
    tokens = shlex.split(text.replace("\\\n", " "))
    env: dict[str, str] = {}
    if tokens and tokens[0] == "env":
        tokens = tokens[1:]
        while tokens and "=" in tokens[0] and not tokens[0].startswith("-"):
            k, v = tokens.pop(0).split("=", 1)
            env[k] = v
    for i, tok in enumerate(tokens):          # a trailing redirection / background marker
        if tok in (">", ">>", "2>&1", "&"):
            tokens = tokens[:i]
            break
    return env, tokens


def one_line(text: str) -> str:
    """`text` made one line for a comment, a header or a hosts line: every control or
    line-separating character written as a visible escape (`bounds.escape_control`)."""
    return escape_control(str(text))


def file_part(name: str) -> str:
    """`name` as one safe path component of a file the scripts write at run time (logs,
    bench results): characters other than [A-Za-z0-9._-] and a leading '.' become '_', and
    a changed name gets a short hash of the original so two names cannot share a file."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    if safe == name and name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


def comment(text: str) -> str:
    """A `# ` shell comment line holding `text` (made one line by `one_line`)."""
    return ("# " + one_line(text)).rstrip()


def script(comment_lines: list[str], body: list[str]) -> str:
    """A bash script: header, `# ` comments, `set -euo pipefail`, then the body lines."""
    comments = [comment(c) for c in comment_lines]
    return HEADER + "\n".join(comments + ["set -euo pipefail", ""] + body) + "\n"


def commands_in(text: str, marker: str) -> list[str]:
    """Each command in a rendered script whose first line contains `marker`, with its
    continuation lines joined."""
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        if marker in lines[i] and not lines[i].lstrip().startswith("#"):
            block = [lines[i]]
            while block[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                block.append(lines[i])
            out.append("\n".join(block))
        i += 1
    return out
