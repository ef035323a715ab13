"""File helpers: safe YAML/JSON loading with clear errors, atomic writes (one file, or a
folder of outputs as a whole), data paths."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from hetplan.bounds import (MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_YAML_BYTES, MAX_YAML_DEPTH,
                            MAX_YAML_NODES)
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


_NOT_A_FILE = ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def open_input(path: str | Path, *, devices_ok: bool = False) -> BinaryIO:
    """Open an input file for binary reading, never blocking on the open: a FIFO being fed
    (`<(zcat t.csv.gz)`) reads normally, one with no writer reads as empty. A directory,
    a socket and, unless `devices_ok` (callers whose read is bounded), a device (/dev/zero
    never ends) are InputErrors, as is a missing or unreadable file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read file ({e.strerror or e})", file=path) from None
    mode = os.fstat(fd).st_mode
    for test, kind in _NOT_A_FILE[:2] if devices_ok else _NOT_A_FILE:
        if test(mode):
            os.close(fd)
            raise InputError(f"is {kind}, not a file", file=path)
    os.set_blocking(fd, True)         # a FIFO reader now waits for data, not for a writer
    return os.fdopen(fd, "rb")


def read_text(path: str | Path, max_bytes: int) -> str:
    """A UTF-8 text file (a leading BOM is dropped) of at most `max_bytes`; a missing,
    unreadable, oversized, binary or non-UTF-8 file is a one-line InputError."""
    path = Path(path)
    with open_input(path, devices_ok=True) as f:    # bounded: /dev/zero or a FIFO has no size
        try:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise InputError(f"file is {size / 2**20:,.1f} MiB, more than the limit of "
                                 f"{max_bytes / 2**20:,.0f} MiB", file=path)
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise InputError(f"cannot read file ({e.strerror or e})", file=path) from None
    if len(data) > max_bytes:           # a file that grew, or a device/pipe without a size
        raise InputError(f"file is more than the limit of {max_bytes / 2**20:,.0f} MiB",
                         file=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                         f"{e.start}); save the file as UTF-8", file=path) from None
    if "\x00" in text:
        raise InputError(f"binary data (NUL byte at offset {text.index(chr(0))}), not text",
                         file=path)
    return text


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(_YAML_LOADER):  # type: ignore[misc, valid-type]
    """safe_load that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {seen[key]})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _check_yaml_shape(text: str, path: Path) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH and more than MAX_YAML_NODES values (aliases
    counted at their expanded size) from the event stream, before building anything: deep
    nesting would crash the parser and alias bombs would expand exponentially."""
    depth = count = 0
    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []
    for ev in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(ev, yaml.AliasEvent):
            count += sizes.get(ev.anchor, 1)
        elif isinstance(ev, yaml.ScalarEvent):
            count += 1
            if ev.anchor:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.CollectionStartEvent):
            count += 1
            depth += 1
            stack.append((ev.anchor, count - 1))
            if depth > MAX_YAML_DEPTH:
                raise InputError(f"nested deeper than {MAX_YAML_DEPTH} levels (line "
                                 f"{ev.start_mark.line + 1})", file=path)
        elif isinstance(ev, yaml.CollectionEndEvent):
            anchor, start = stack.pop()
            depth -= 1
            if anchor:
                sizes[anchor] = count - start
        if count > MAX_YAML_NODES:
            raise InputError(f"more than {MAX_YAML_NODES:,} values (aliases expanded); too "
                             "large for a hetplan input file", file=path)


def load_yaml(path: str | Path) -> Any:
    """Load a YAML file safely: UTF-8, at most MAX_YAML_BYTES, MAX_YAML_DEPTH levels and
    MAX_YAML_NODES values, no duplicate keys. Every failure is a one-line InputError."""
    path = Path(path)
    text = read_text(path, MAX_YAML_BYTES)
    try:
        _check_yaml_shape(text, path)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or (str(e).splitlines() or ["invalid YAML"])[0]
        what = "YAML error" if isinstance(e, yaml.constructor.ConstructorError) else \
            "YAML syntax error"
        raise InputError(f"{what}{where}: {problem}", file=path) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_YAML_DEPTH} levels", file=path) from None


def first_non_finite(obj: Any, loc: str = "") -> str | None:
    """The dotted location of the first NaN or infinity in parsed JSON/YAML (None if there
    is none)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return loc or "(top level)"
    items = obj.items() if isinstance(obj, dict) else \
        enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        found = first_non_finite(v, f"{loc}.{k}" if loc else str(k))
        if found:
            return found
    return None


def _unique_pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _json_depth(obj: Any) -> int:
    depth, level = 0, [obj]
    while level:
        depth += 1
        level = [v for x in level if isinstance(x, (dict, list))
                 for v in (x.values() if isinstance(x, dict) else x)]
    return depth - 1


def load_json(path: str | Path) -> Any:
    """Load a JSON file: UTF-8, at most MAX_JSON_BYTES and MAX_JSON_DEPTH levels, no NaN or
    Infinity, no duplicate keys. Every failure is a one-line InputError."""
    path = Path(path)
    text = read_text(path, MAX_JSON_BYTES)
    try:
        obj = json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as e:
        raise InputError(f"JSON syntax error at line {e.lineno}, column {e.colno}: {e.msg}",
                         file=path) from None
    except ValueError as e:
        raise InputError(f"invalid JSON: {e}", file=path) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_JSON_DEPTH} levels", file=path) from None
    if _json_depth(obj) > MAX_JSON_DEPTH:
        raise InputError(f"nested deeper than {MAX_JSON_DEPTH} levels", file=path)
    bad = first_non_finite(obj)      # NaN, Infinity and 1e999 parse as floats
    if bad is not None:
        raise InputError("must be a finite number (no NaN or Infinity)", file=path, field=bad)
    return obj


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"     # NaN/Infinity are not JSON


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
