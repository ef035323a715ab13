"""File helpers: safe YAML/JSON loading with clear errors, atomic writes (one file, or a
folder of outputs as a whole), data paths."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def _dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def confined_path(root: str | Path, rel: str) -> Path:
    """`root / rel` for a relative path that stays inside `root`: no absolute path, no `..`,
    no empty or control-character component. Anything else is an InputError: a file name
    built from a plan's names must not escape the output folder."""
    parts = rel.split("/")
    if (not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in parts)
            or any(ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in rel)):
        raise InputError(f"unsafe output file name {rel!r}", file=root)
    root = Path(root)
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(f"output file {rel!r} resolves outside the folder", file=root)
    return path


@contextmanager
def output_folder(target: str | Path, owns: Callable[[Path], bool] = lambda p: True
                  ) -> Iterator[Path]:
    """Write a multi-file output as a whole: yields an empty temporary folder beside `target`;
    when the block ends without an exception, what it holds replaces `target`'s entries.

    `owns(entry)` says which top-level entries of an existing `target` this writer owns:
    those are removed (no stale file survives a rewrite) or replaced; every other entry
    (a plan.json beside a simulation, logs a launch script wrote) is left where it is. When
    `target` is absent, or holds only owned entries, the folder is swapped in with one
    rename. On an exception nothing under `target` changes, and the temporary folders are
    removed in every case (a crash between the renames of a partial swap is the one gap).
    """
    target = Path(os.path.abspath(target))    # '.' and 'a/..' have a real name and parent
    if target.exists() and not target.is_dir():
        raise InputError("exists and is not a folder", file=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".new"))
    try:
        os.chmod(tmp, _dir_mode())            # mkdtemp makes 0700; give a normal mode
        yield tmp
        _swap_in(tmp, target, owns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, target: Path, owns: Callable[[Path], bool]) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    old = sorted(target.iterdir())
    stale = [p.name for p in old if owns(p)]
    names = sorted(p.name for p in new.iterdir())
    foreign = {p.name for p in old} - set(stale)
    clash = sorted(foreign & set(names))
    if clash:
        raise InputError(f"holds {clash[0]!r}, which this command would replace but did "
                         "not write; move it away or choose another folder", file=target)
    trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.",
                                  suffix=".old"))
    try:
        cwd = Path.cwd()
        if not foreign and not (cwd == target or target in cwd.parents):
            # the whole folder is ours (and no shell sits in it): two renames
            os.rename(target, trash / "old")
            try:
                os.rename(new, target)
            except BaseException:
                os.rename(trash / "old", target)
                raise
            return
        moved_out: list[str] = []
        moved_in: list[str] = []
        try:
            for name in stale:
                os.rename(target / name, trash / name)
                moved_out.append(name)
            for name in names:
                os.rename(new / name, target / name)
                moved_in.append(name)
        except BaseException:                 # put the previous output back
            for name in reversed(moved_in):
                os.rename(target / name, new / name)
            for name in reversed(moved_out):
                os.rename(trash / name, target / name)
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)
