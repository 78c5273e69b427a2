"""Local paths and fsspec URLs (``s3://``, ``gs://``, ``file://``...), read and written alike.

A URL is read as a stream through fsspec. A URL is written by making the whole
file locally first and uploading it once at the end (``put_file``), so the object
store never holds half a table, and a failed upload leaves the local results
intact. Local writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import IO, Any, Iterator, Mapping, Optional, Tuple

from ._extras import need
from .errors import OutputError, OutputPathError, ValidationError

NEW_FILE_MODE = 0o600
TEMP_SUFFIX = ".claudebatch.tmp"


def is_url(path: str) -> bool:
    """A location fsspec reaches (``s3://bucket/key``); ``file://`` counts as local."""
    return "://" in path and not path.startswith("file://")


def local(path: str) -> str:
    """A local path for ``path``, ``file://`` stripped."""
    return path[len("file://"):] if path.startswith("file://") else path


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _filesystem(url: str, options: Optional[Mapping[str, Any]]) -> Tuple[Any, str]:
    fsspec = need("fsspec", f"the location {url}")
    try:
        fs, target = fsspec.core.url_to_fs(url, **dict(options or {}))
    except ImportError as exc:  # the protocol's own library (s3fs, gcsfs...)
        raise OutputPathError(f"cannot reach {url}: {exc}") from None
    except ValueError as exc:  # an unknown protocol
        raise OutputPathError(f"cannot reach {url}: {exc}") from None
    return fs, target


@contextmanager
def open_input(path: str, options: Optional[Mapping[str, Any]] = None) -> Iterator[IO[bytes]]:
    """A binary handle on ``path`` (local or URL), or ValidationError naming it."""
    if not is_url(path):
        try:
            handle: IO[bytes] = open(local(path), "rb")
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            yield handle
        return
    fs, target = _filesystem(path, options)
    try:
        remote = fs.open(target, "rb")
    except FileNotFoundError:
        raise ValidationError(f"cannot read {path}: no such object") from None
    except Exception as exc:  # a store's own errors: network, credentials, permissions
        raise ValidationError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    with remote:
        # a buffered reader over it: readline(limit) and the same reads as a local file
        yield io.BufferedReader(remote, buffer_size=1 << 20)


def check_destination(path: str, options: Optional[Mapping[str, Any]] = None,
                      source: object = None) -> None:
    """Refuse, before anything is sent, a URL the job could not write (a local path is
    checked as any output is: ``_output.check_output``)."""
    if isinstance(source, str) and source == path:
        raise OutputPathError(f"the output {path} is the input: choose another output")
    fs, target = _filesystem(path, options)
    key = target.strip("/")
    if "/" not in key or target.endswith("/"):
        raise OutputPathError(f"the output {path} names no file: give one, such as "
                              f"{path.rstrip('/')}/results.parquet")
    # an object store has no folders, only its buckets: the first part must exist
    root = key.split("/", 1)[0]
    try:
        fs.info(root)
    except FileNotFoundError:
        raise OutputPathError(f"the output's bucket (or root folder) {root!r} does not exist "
                              f"for {path}") from None
    except Exception as exc:  # a store's own errors: credentials, network
        raise OutputPathError(f"cannot reach the output {path}: {type(exc).__name__}: "
                              f"{exc}") from None


@contextmanager
def open_output(path: str, options: Optional[Mapping[str, Any]] = None) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces ``path`` only when the block ends cleanly.

    Local: a temporary file beside it, renamed into place (an existing file keeps its
    mode; a new one is 0600). A URL: a local temporary file, uploaded whole at the end.
    """
    remote = is_url(path)
    # through a symlink to the file it names: the link stays, the file is replaced
    target = local(path) if remote else os.path.realpath(local(path))
    folder = tempfile.gettempdir() if remote else os.path.dirname(target)
    try:
        fd, tmp = temporary_beside(os.path.join(folder, basename(target)))
    except OSError as exc:
        raise OutputError(f"cannot write the output {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if remote:
            fs, key = _filesystem(path, options)
            try:
                fs.put_file(tmp, key)
            except Exception as exc:
                raise OutputError(f"cannot upload the output to {path}: {exc}") from None
        else:
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except FileNotFoundError:
                mode = NEW_FILE_MODE
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write the output {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def temporary_beside(path: str) -> Tuple[int, str]:
    """``(fd, name)`` of a new private file beside ``path`` to be renamed onto it, named
    ``.NAME.PID.*.claudebatch.tmp``; what a killed process left for the same ``path`` is
    removed first."""
    folder, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    _sweep(folder, name)
    return tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder)


def temporary_folder(kind: str) -> str:
    """A private temporary folder ``claudebatch-KIND-PID-*``; those of processes that are
    gone are removed first (a SIGKILL runs no cleanup)."""
    base = tempfile.gettempdir()
    start = f"claudebatch-{kind}-"
    for leftover in _left_by_the_dead(base, start, "-"):
        shutil.rmtree(leftover, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{start}{os.getpid()}-", dir=base)


def _sweep(folder: str, name: str) -> None:
    """Remove what a killed writer of ``name`` left beside it (``.NAME.PID.*.tmp`` of a
    process that is gone): a table half-written when the process died."""
    for leftover in _left_by_the_dead(folder, f".{name}.", ".", TEMP_SUFFIX):
        try:
            os.unlink(leftover)
        except OSError:
            pass


def _left_by_the_dead(folder: str, start: str, after_pid: str, end: str = ""
                      ) -> Iterator[str]:
    """Paths in ``folder`` named ``START<pid>AFTER_PID...END`` whose process is gone."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if entry.startswith(start) and entry.endswith(end):
            pid = entry[len(start):].split(after_pid, 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                yield os.path.join(folder, entry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: leave its file alone
    return True
