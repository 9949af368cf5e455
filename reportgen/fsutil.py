"""The three file-system moves every stage relies on, each implemented once.

- :func:`sha256_file` hashes a file in 1 MiB chunks (datasets, run files); inside :func:`hashing_once` (one
  command's stages) a file that did not change is read once;
- :func:`atomic_write` replaces a file so that a reader sees either the old bytes or the new ones, never a mix
  (manifests, run files, posts, cached figures);
- :func:`swap_dir` replaces a whole directory (a run, a dataset's ``raw/``, a post's figures, the built site, the
  vendored MathJax) by renames only, so an interruption leaves either the old directory in place or it moved aside
  under a name that a recovery step recognises.

Test hook (off by default, for the fault-injection tests only): ``REPORTGEN_TEST_WRITE_DELAY=<seconds>`` makes
:func:`pause_for_tests` sleep; :func:`swap_dir` calls it between moving the old directory aside and moving the new one
in, and the results store after each file it stages, so a test can kill the process at each of those moments.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .settings import ENV_CACHE, ENV_TEST_WRITE_DELAY

CHUNK = 1 << 20  # bytes read at a time when hashing: large files never sit in memory whole


def cache_root() -> Path:
    """Where derived numbers and drawn figures are cached: ``$REPORTGEN_CACHE`` or ``.cache`` (never results/)."""
    return Path(os.environ.get(ENV_CACHE) or ".cache")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``; OSError if it cannot be read."""
    if _ONCE is None:
        return _sha256_file(path)
    st = os.stat(path)
    identity = (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if identity not in _ONCE:
        _ONCE[identity] = _sha256_file(path)
    return _ONCE[identity]


@contextmanager
def hashing_once() -> Iterator[None]:
    """Within the block, :func:`sha256_file` reads a file once while its inode, size and modification and change
    times stay the same: a command whose stages each check the same runs (plan, collect, render) hashes them once."""
    global _ONCE
    outer = _ONCE
    _ONCE = {} if outer is None else outer
    try:
        yield
    finally:
        _ONCE = outer


_ONCE: dict[tuple, str] | None = None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def pause_for_tests(index: int = 0) -> None:
    """The REPORTGEN_TEST_WRITE_DELAY hook (see the module docstring); does nothing unless the variable is set.
    A comma-separated list gives a delay per ``index`` (the results store passes how many runs this process wrote
    before), the last one holding for the rest: ``0,60`` writes the first run at once and then stalls in the second,
    so a test can interrupt a process that has finished one run and is writing the next."""
    delay = os.environ.get(ENV_TEST_WRITE_DELAY)
    if delay:
        try:
            values = [float(v) for v in delay.split(",")]
        except ValueError:
            return
        time.sleep(values[min(index, len(values) - 1)])


def fsync_dir(path: Path) -> None:
    """Make the renames inside directory ``path`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temp file in the same directory, fsync, then rename over the target.

    Creates the parent directory. On any error (a full disk, Ctrl-C) the temp file is removed and the target is
    left as it was; the error propagates unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def swap_dir(new: Path, final: Path, aside: Path) -> None:
    """Put the finished directory ``new`` in place of ``final`` by renames only.

    The current ``final`` (if any) is renamed to ``aside`` first and deleted last. Killed in between, ``final`` is
    missing and ``aside`` holds the old copy: a recovery step puts it back (the results store's ``clean_partials``
    and the renderer's ``_recover`` do). If moving ``new`` in fails, the old copy is put back at once and the error
    propagates. ``aside`` must be on the same file system (a sibling of ``final``); a stale ``aside`` left by an
    earlier interrupted swap is removed first, since ``final`` is replaced anyway.
    """
    if aside.exists():
        shutil.rmtree(aside)
    if final.exists():
        os.replace(final, aside)
        pause_for_tests()
    try:
        os.replace(new, final)
    except BaseException:
        if aside.exists() and not final.exists():
            os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    fsync_dir(final.parent)
