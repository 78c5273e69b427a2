"""The job's output file: checked before anything is sent, written whole lines at a time.

The output is where paid-for answers land, so its rules are strict: it is
never the input, its folder must exist and be writable before the first batch
is created, a new file is private (0600, like the job store), a rewritten one
keeps the mode the user gave it, and a failed write (a full disk) leaves no
partial last line behind, so a rerun can resume from what is there.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any, Iterable, Optional, Tuple, Union

from ._fs import temporary_beside
from ._pending import dumps
from .errors import OutputError, OutputPathError
from .tables import check_overwrite

#: Lines are gathered up to this many bytes before each write to the file.
BUFFER_BYTES = 64 * 1024
NEW_FILE_MODE = 0o600

PathLike = Union[str, "os.PathLike[str]"]


def result_line(value: Any) -> bytes:
    """A result as one compact JSON line, whatever text the service put in it.

    UTF-8 as served; a lone surrogate (``"\\ud800"`` in the body, which no UTF-8
    can hold) is written back escaped, as it came.
    """
    try:
        return dumps(value)
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def check_output(output: str, source: object = None) -> None:
    """Refuse, before anything is sent, an output the job could not write or would destroy."""
    if os.path.isdir(output):
        raise OutputPathError(f"the output {output} is a folder; give a file path such as "
                              f"{os.path.join(output, 'results.jsonl')}")
    if os.path.islink(output) and not os.path.exists(output):
        raise OutputPathError(f"the output {output} is a link to {os.readlink(output)}, which "
                              "does not exist")
    if os.path.exists(output) and not stat.S_ISREG(os.stat(output).st_mode):
        raise OutputPathError(f"the output {output} is not a regular file (a device, a pipe, "
                              "a socket): paid-for answers must land in a file a rerun can "
                              "read back")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise OutputPathError(f"the output's folder {folder} does not exist; create it first")
    if isinstance(source, (str, os.PathLike)) and _same_file(os.fspath(source), output):
        raise OutputPathError(f"the output {output} is the input file {os.fspath(source)}: "
                              "writing results would destroy the input; choose another output")
    if os.path.exists(output):
        if not os.access(output, os.W_OK):
            raise OutputPathError(f"the output {output} is not writable (read-only file or "
                                  "file system)")
        check_overwrite(output)
    elif not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot create the output in {folder}: the folder is not "
                              "writable (permissions or a read-only file system)")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)  # through symlinks and hard links
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


class OutputFile:
    """Appends result lines; on a write error, cuts the file back to its last whole line.

    The file is opened (and, unless appending, emptied) only when the first line is
    written or the job ends normally: a job that fails before it has anything to write
    (the service down, a budget veto) leaves the output as it was.
    """

    def __init__(self, path: str, *, append: bool) -> None:
        self.path = path
        self.append = append
        self._fd = -1
        self._identity: Tuple[int, int] = (-1, -1)
        self._durable = 0  # bytes of whole lines on disk
        self._buffer = bytearray()
        self._closed = False

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.append else os.O_TRUNC)
        try:
            self._fd = os.open(self.path, flags, NEW_FILE_MODE)
        except OSError as exc:
            raise OutputError(f"cannot open the output {self.path}: {exc.strerror}") from None
        opened = os.fstat(self._fd)
        self._identity = (opened.st_dev, opened.st_ino)
        self._durable = opened.st_size

    def write_line(self, line: bytes) -> None:
        if self._fd < 0:
            self._open()
        self._buffer += line
        self._buffer += b"\n"
        if len(self._buffer) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Put every whole line written so far in the file, or raise OutputError."""
        if self._fd < 0:
            return  # nothing written yet: the file is left as it was
        view = memoryview(self._buffer)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            view.release()
            self._cut_back()
            raise OutputError(_write_failed(self.path, exc)) from None
        view.release()
        self._durable += done
        self._buffer.clear()
        self._check_still_there()

    def _check_still_there(self) -> None:
        """The file written is still the one at ``path``: not deleted, not replaced."""
        try:
            now = os.stat(self.path)
            same = (now.st_dev, now.st_ino) == self._identity
        except OSError:
            same = False
        if not same:
            raise OutputError(
                f"the output {self.path} was deleted or replaced while the job wrote to it: "
                "the results written so far are not in it. The batches are paid: run the "
                "same command again (with a job store, the same --name resumes without "
                "sending anything twice)")

    def _cut_back(self) -> None:
        """Drop whatever part of the buffer reached the file: no partial last line."""
        self._buffer.clear()
        try:
            os.ftruncate(self._fd, self._durable)
        except OSError:
            pass

    def close(self) -> None:
        """The job ended: the output is what it wrote (an empty file if nothing)."""
        if self._closed:
            return
        if self._fd < 0:
            self._open()
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd, self._closed = -1, True

    def abandon(self) -> None:
        """Close after a failure elsewhere: keep the whole lines, drop the rest."""
        if self._closed or self._fd < 0:
            return  # never opened: the output is untouched
        try:
            self.flush()
        except OutputError:
            pass
        finally:
            if self._fd >= 0:
                os.close(self._fd)
            self._fd, self._closed = -1, True

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, exc_type: Optional[type], *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


def _write_failed(path: str, exc: OSError) -> str:
    hint = " (the disk is full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return (f"cannot write to the output {path}: {exc.strerror}{hint}. Every whole result "
            "line written so far is kept; the batches already made are paid: free the space "
            "and run the same command again (with a job store, the same --name resumes "
            "without sending anything twice)")


def replace_lines(path: str, lines: Iterable[bytes]) -> None:
    """Replace ``path`` with ``lines`` atomically, keeping its mode (0600 when new)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as out:
            for line in lines:
                out.write(line)
                out.write(b"\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(_write_failed(path, exc)) from None
        raise
