"""File helpers: safe YAML/JSON loading with clear errors, atomic writes, data paths."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from hetplan.errors import InputError


def data_root() -> Path:
    """Directory holding `catalogs/` and `workloads/`.

    `HETPLAN_DATA_DIR` overrides; otherwise the repository checkout the package lives in
    (the supported install is `pip install -e .`).
    """
    env = os.environ.get("HETPLAN_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent


def catalogs_dir() -> Path:
    return data_root() / "catalogs"


def workloads_dir() -> Path:
    return data_root() / "workloads"


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file with `yaml.safe_load`; syntax errors become one-line InputErrors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", file=path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise InputError(f"YAML syntax error{where}: {problem}", file=path) from None


def load_json(path: str | Path) -> Any:
    """Load a JSON file; syntax errors become one-line InputErrors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror})", file=path) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}",
                         file=path) from None


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomic(path: str | Path, text: str) -> None:
    """Write text (UTF-8, '\\n' newlines) to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` atomically: a temp file in the same directory, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
