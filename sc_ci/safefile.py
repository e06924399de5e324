"""Write report and CI files without ever following a planted symlink (temp file + rename, O_NOFOLLOW)."""

from __future__ import annotations

import contextlib
import os
import secrets as pysecrets
import stat
from pathlib import Path

from sc_ci.errors import EXIT_USAGE, ScError
from sc_ci.sanitize import one_line

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafeFileError(ScError):
    """A file could not be written safely (a symlink, a non-regular file, a directory outside the root)."""

    exit_code = EXIT_USAGE


def _show(path: Path | str) -> str:
    return one_line(str(path), 300)


def _within(child: str, root: str) -> bool:
    return child == root or child.startswith(root.rstrip(os.sep) + os.sep)


def _dir_realpath(fd: int, fallback: Path) -> str:
    proc = f"/proc/self/fd/{fd}"
    try:
        return os.readlink(proc)
    except OSError:
        return os.path.realpath(fallback)


def _open_parent(path: Path, root: Path | None) -> int:
    """An fd of `path`'s directory, checked to lie inside `root` (after resolving symlinks) when given."""
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd = os.open(parent, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError as exc:
        raise UnsafeFileError(f"cannot open the directory of {_show(path)}: {exc.strerror or exc}",
                              fix="Create the directory first, or write the file somewhere else.") from exc
    if root is not None:
        real = _dir_realpath(fd, parent)
        allowed = os.path.realpath(root)
        if not _within(real, allowed):
            os.close(fd)
            raise UnsafeFileError(
                f"refusing to write {_show(path)}: its directory resolves outside {_show(allowed)}",
                why=f"the directory is (or goes through) a symlink to {_show(real)}",
                fix="Remove the symlink, or write the file inside the workspace.")
    return fd


def write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644, root: Path | str | None = None,
                fsync: bool = True) -> None:
    """Atomically replace `path` with `data`: a fresh temp file (O_CREAT|O_EXCL|O_NOFOLLOW) in the same
    directory, fsync'd (unless `fsync=False`, for scratch files), then renamed over `path`. A symlink at
    `path` is replaced, never written through. With `root`, the target directory must resolve inside it.
    Raises UnsafeFileError (exit 2)."""
    target = Path(path)
    if not target.name or target.name in (".", ".."):
        raise UnsafeFileError(f"refusing to write {_show(target)}: not a file name")
    dfd = _open_parent(target, Path(root) if root is not None else None)
    tmp = f".{target.name[:64]}.{pysecrets.token_hex(6)}.tmp"
    try:
        try:
            existing = os.stat(target.name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise UnsafeFileError(f"refusing to write {_show(target)}: it is a directory",
                                  fix="Choose a file path, not a directory.")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600, dir_fd=dfd)
        except OSError as exc:
            raise UnsafeFileError(f"cannot create a file next to {_show(target)}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fchmod(fh.fileno(), mode & 0o7777)
                if fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise UnsafeFileError(f"cannot write {_show(target)}: {exc.strerror or exc}") from exc
        if fsync:
            with contextlib.suppress(OSError):
                os.fsync(dfd)
    finally:
        os.close(dfd)


def write_text(path: Path | str, text: str, *, mode: int = 0o644, root: Path | str | None = None,
               fsync: bool = True) -> None:
    """`write_bytes` of `text` as UTF-8 (characters that cannot be encoded are backslash-escaped)."""
    write_bytes(path, text.encode("utf-8", "backslashreplace"), mode=mode, root=root, fsync=fsync)


def append_text(path: Path | str, text: str, *, root: Path | str | None = None) -> None:
    """Append `text` (UTF-8) to a regular file such as $GITHUB_OUTPUT, creating it 0644 if missing.
    Refuses a symlink (O_NOFOLLOW), a FIFO or device (no blocking open), or a directory outside `root`."""
    target = Path(path)
    dfd = _open_parent(target, Path(root) if root is not None else None)
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        try:
            fd = os.open(target.name, flags, 0o644, dir_fd=dfd)
        except OSError as exc:
            why = "it is a symlink" if os.path.islink(target) else (exc.strerror or str(exc))
            raise UnsafeFileError(f"refusing to append to {_show(target)}: {why}",
                                  fix="Point the variable at a regular file (not a symlink, FIFO or device).") from exc
    finally:
        os.close(dfd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) and not _is_dev_null(info):
            raise UnsafeFileError(f"refusing to append to {_show(target)}: not a regular file",
                                  fix="Point the variable at a regular file.")
        os.set_blocking(fd, True)
        data = text.encode("utf-8", "backslashreplace")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise UnsafeFileError(f"cannot append to {_show(target)}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _is_dev_null(info: os.stat_result) -> bool:
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == null.st_rdev


def read_bytes(path: Path | str, *, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A FIFO, device or directory is refused
    without a blocking open (stat first, then O_NONBLOCK and fstat). FileNotFoundError if missing;
    UnsafeFileError for everything else."""
    target = Path(path)
    info = os.stat(target)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"refusing to read {_show(target)}: not a regular file")
    if info.st_size > limit:
        raise UnsafeFileError(f"refusing to read {_show(target)}: larger than {limit} bytes")
    try:
        fd = os.open(target, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
    except OSError as exc:
        raise UnsafeFileError(f"cannot read {_show(target)}: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(f"refusing to read {_show(target)}: not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnsafeFileError(f"cannot read {_show(target)}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if size > limit:
        raise UnsafeFileError(f"refusing to read {_show(target)}: larger than {limit} bytes")
    return b"".join(chunks)
