"""Publishing a directory atomically: old or new, never neither, never a mix.

:func:`atomic_directory` yields a staging directory created beside the target and locked
(``flock``) by this process. Everything written there, sub-directories included, is fsynced and
then published in one step: ``rename`` when the target is absent, else Linux's
``renameat2(RENAME_EXCHANGE)``, which swaps the two directories atomically (the old one is then
removed from the staging name). Where the exchange is unsupported (another OS, some network file
systems) the old directory is moved aside (locked) and the new one renamed in: a kill between those
two renames leaves the old directory at its aside name, and the next save or load of the target
renames it back (:func:`recover_directory`).

Temporaries of killed writers are removed by the next save of the same target: a staging or aside
directory whose lock can be taken belongs to no live writer (the kernel drops a dead process's
locks). Inside a staging directory, nested :func:`atomic_directory` calls (a component saving its
sub-parts) write in place and are published with their parent.

``EMBEDLAB_FSYNC=0`` skips the fsyncs (atomicity against killed processes does not depend on them;
durability across power loss does).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import hashlib
import os
import re
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from embedlab.errors import StateError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

FSYNC_ENV = "EMBEDLAB_FSYNC"
#: Longest target name kept in temporary names (longer ones are shortened and hashed).
_STEM_BYTES = 150
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}

#: Staging directories this context is writing (nested saves write inside them).
_ACTIVE: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("embedlab_staging", default=())


class _ExchangeUnsupported(Exception):
    pass


def _fsync_enabled() -> bool:
    return os.environ.get(FSYNC_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def fsync_path(path: str | Path, *, directory: bool = False) -> None:
    """fsync one file or directory (no-op when ``EMBEDLAB_FSYNC=0`` or unsupported)."""
    if not _fsync_enabled():
        return
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open directories
            return
        raise
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every regular file and directory under ``root`` (children before parents)."""
    if not _fsync_enabled():
        return
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            file = os.path.join(folder, name)
            if not os.path.islink(file):
                fsync_path(file)
        fsync_path(folder, directory=True)


def name_max(folder: Path) -> int:
    """Longest file name (bytes) the file system of ``folder`` accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_file_name(path: Path, *, limit: int | None = None) -> None:
    """:class:`StateError` when the last component of ``path`` is too long for its file system."""
    size = len(os.fsencode(path.name))
    limit = limit or name_max(_existing_ancestor(path.parent))
    if size > limit:
        raise StateError(f"{path}: the file name is {size} bytes long; this file system allows {limit}")


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(".")


class _DirLock:
    """An exclusive ``flock`` on a directory, held while the object is open."""

    def __init__(self, path: Path, *, blocking: bool) -> None:
        self.fd: int | None = None
        try:
            self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        if fcntl is None:  # pragma: no cover - not POSIX: no locking, cleaning relies on age
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            self.release()

    @property
    def held(self) -> bool:
        return self.fd is not None

    def still_at(self, path: Path) -> bool:
        """True when ``path`` is still the locked directory (not removed or replaced meanwhile)."""
        try:
            return self.fd is not None and os.stat(path).st_ino == os.fstat(self.fd).st_ino
        except OSError:
            return False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> _DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Names:
    """Temporary names beside one target: ``.<stem>.tmp-<hex>`` (staging) and ``.<stem>.old-<hex>``
    (an old state moved aside); earlier embedlab versions used the same pattern."""

    def __init__(self, target: Path) -> None:
        encoded = os.fsencode(target.name)
        if len(encoded) <= _STEM_BYTES:
            self.stem = target.name
        else:
            digest = hashlib.sha256(encoded).hexdigest()[:16]
            self.stem = encoded[:_STEM_BYTES].decode("utf-8", "ignore") + "~" + digest
        self.pattern = re.compile(rf"\.{re.escape(self.stem)}\.(tmp|old)-[0-9a-f]{{32}}")

    def new(self, role: str) -> str:
        return f".{self.stem}.{role}-{uuid.uuid4().hex}"

    def role(self, name: str) -> str | None:
        match = self.pattern.fullmatch(name)
        return match.group(1) if match else None


def _temporaries(target: Path, names: _Names, role: str) -> list[Path]:
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    found = [Path(e.path) for e in entries if names.role(e.name) == role and e.is_dir(follow_symlinks=False)]
    return sorted(found, key=lambda p: _mtime(p), reverse=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def recover_directory(target: str | Path) -> bool:
    """Put back an old directory left aside by a writer killed between its two renames (only
    where ``RENAME_EXCHANGE`` is unsupported); True when one was restored."""
    target = Path(target)
    if os.path.lexists(target):
        return False
    names = _Names(target)
    for aside in _temporaries(target, names, "old"):
        with _DirLock(aside, blocking=False) as lock:
            if not lock.held:
                continue  # its writer is alive and about to remove it
            try:
                os.rename(aside, target)
            except OSError:
                continue
            fsync_path(target.parent, directory=True)
            return True
    return False


def clean_stale(target: str | Path) -> list[Path]:
    """Remove the staging and aside directories of killed writers of ``target``; returns them.

    A directory whose lock is held belongs to a live writer and is kept. A writer that created its
    staging directory but had not locked it yet notices the removal and starts again
    (:func:`_staging`).
    """
    target = Path(target)
    names = _Names(target)
    removed = []
    for role in ("tmp", "old"):
        for path in _temporaries(target, names, role):
            with _DirLock(path, blocking=False) as lock:
                if not lock.held:
                    continue
                if fcntl is None and time.time() - _mtime(path) < 86400:  # pragma: no cover
                    continue
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28, musl without the wrapper
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_EXCHANGE = _renameat2()


def exchange(a: Path, b: Path) -> None:
    """Swap two existing directories atomically (``renameat2(RENAME_EXCHANGE)``)."""
    if _EXCHANGE is None:
        raise _ExchangeUnsupported()
    if _EXCHANGE(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in _UNSUPPORTED:
            raise _ExchangeUnsupported()
        raise OSError(code, os.strerror(code), str(b))


def _replace_by_renames(staging: Path, target: Path, names: _Names) -> None:
    """Fallback publish: old aside (locked, so nobody cleans it), new in, old removed."""
    aside = target.parent / names.new("old")
    with _DirLock(target, blocking=True):
        os.rename(target, aside)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(aside, target)
            raise
        fsync_path(target.parent, directory=True)
        shutil.rmtree(aside, ignore_errors=True)


def _publish(staging: Path, target: Path, names: _Names, check_existing: Callable[[Path], None]) -> None:
    for _ in range(8):
        try:
            os.rename(staging, target)  # absent, or an empty directory
            break
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        check_existing(target)
        try:
            exchange(staging, target)  # the staging name now holds the old directory
        except FileNotFoundError:
            continue  # the target vanished meanwhile: rename again
        except _ExchangeUnsupported:
            _replace_by_renames(staging, target, names)
            return
        fsync_path(target.parent, directory=True)
        shutil.rmtree(staging, ignore_errors=True)
        return
    else:
        raise StateError(f"{target}: could not publish (other writers keep replacing it)")
    fsync_path(target.parent, directory=True)


def _inside_active(target: Path) -> bool:
    resolved = target.resolve()
    return any(resolved == root or root in resolved.parents for root in _ACTIVE.get())


def _no_check(target: Path) -> None:
    return None


def _as_state_error(target: Path, error: OSError) -> StateError:
    reason = error.strerror or str(error)
    if error.errno == errno.ENAMETOOLONG:
        reason = "file name or path too long for this file system"
    return StateError(f"{target}: cannot write ({reason}; errno {error.errno})")


@contextlib.contextmanager
def atomic_directory(target: str | Path, *,
                     check_existing: Callable[[Path], None] = _no_check) -> Iterator[Path]:
    """Yield a directory to fill; on success it replaces ``target`` in one atomic step.

    ``check_existing(target)`` runs when ``target`` exists, before it is replaced, and may raise to
    refuse (for example when it is not a state directory). ``target`` existing as a file, an
    over-long name, or an ``OSError`` while writing (full disk, read-only file system) raise
    :class:`StateError` naming the path. On any error the staging directory is removed and the
    old ``target`` is untouched.
    """
    target = Path(target)
    if _inside_active(target):
        yield _nested(target)
        return
    check_file_name(target)
    if target.is_symlink():
        target = target.resolve()
    names = _Names(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StateError(f"{target}: cannot write: a parent path exists and is not a directory") from None
    except OSError as error:
        raise _as_state_error(target, error) from error
    if os.path.lexists(target):
        if not target.is_dir():
            raise StateError(f"{target}: exists and is a file, not a state directory; remove it or "
                             "choose another path")
        check_existing(target)
    recover_directory(target)
    clean_stale(target)
    try:
        staging, lock = _staging(target, names)
    except OSError as error:
        raise _as_state_error(target, error) from error
    try:
        with lock:
            token = _ACTIVE.set((*_ACTIVE.get(), staging.resolve()))
            try:
                yield staging
            finally:
                _ACTIVE.reset(token)
            fsync_tree(staging)
            _publish(staging, target, names, check_existing)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise _as_state_error(target, error) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _staging(target: Path, names: _Names) -> tuple[Path, _DirLock]:
    """A new staging directory beside ``target`` and the held lock on it. Between ``mkdir`` and
    ``flock`` another writer's :func:`clean_stale` may remove it: then try another name."""
    for _ in range(16):
        staging = target.parent / names.new("tmp")
        staging.mkdir()
        lock = _DirLock(staging, blocking=False)
        if lock.still_at(staging):
            return staging, lock
        lock.release()
    raise OSError(errno.EAGAIN, "could not lock a staging directory", str(target))


def _nested(target: Path) -> Path:
    """A part of a state being staged by this context: created in place, published with it."""
    check_file_name(target)
    try:
        target.mkdir(parents=True)
    except FileExistsError:
        raise StateError(f"{target}: written twice while saving one state") from None
    return target


@contextlib.contextmanager
def atomic_file(target: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Yield an open file (``mode`` ``"wb"`` or ``"w"``) that replaces the file ``target`` in one
    step when the block ends: written to a temporary beside it (``.<name>.tmp-<hex>``, created
    exclusively, so with the mode a plain ``open(target, "w")`` gives), fsynced, then renamed over
    ``target``; a reader sees the old file or the new one, never a part. On any error the
    temporary is removed, ``target`` is untouched and the error propagates (an ``OSError`` as
    is: the caller says what could not be written). The one-file counterpart of
    :func:`atomic_directory`.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file writes with mode 'wb' or 'w', got {mode!r}")
    target = Path(target)
    tmp = target.parent / _Names(target).new("tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = open(tmp, mode.replace("w", "x"), encoding=encoding if mode == "w" else None)
    try:
        with handle:
            yield handle
            handle.flush()
            fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent, directory=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_file_atomically(target: str | Path, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """``data`` (bytes, or text written as ``encoding``) as the whole new content of ``target``,
    through :func:`atomic_file`."""
    with atomic_file(target, "w" if isinstance(data, str) else "wb",
                     encoding=encoding if isinstance(data, str) else None) as handle:
        handle.write(data)
    return Path(target)
