"""Files that are never half-written: temporary siblings, fsync, rename, signals.

The ground floor of riskmodel's storage (standard library and :mod:`riskmodel.errors`
only). A writer builds its output in a temporary sibling of the target, in the same
folder, under a name only riskmodel uses::

    .<target name>.<pid>-<12 hex digits>.tmp

flushes it to disk (:func:`fsync_tree`) and renames it over the target
(:func:`move_into_place`). A directory target (a zarr store) is swapped in one atomic
step where the system allows it (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere the old
store is first renamed aside (``.<name>.<pid>-<hex>.old``). Whatever happens, the target
name holds either the complete previous version or the complete new one.

Temporaries of a writer that was killed (SIGKILL, power loss) are removed by the next
write of the same target (:func:`remove_stale_siblings`): only names of the form above,
and only when the process that made them no longer exists. A SIGTERM or SIGHUP during a
write becomes an exception (:func:`signals_as_exceptions`), so the writer removes its
temporary before the process ends as the signal asked.

:func:`write_bytes` writes a small file (an HTML report, a figure) that way, with the
mode a plain ``open`` gives (the umask's, not ``0o600``).

:func:`numba_cache_problem` tells, without importing numba, whether numba will find a
writable cache folder for riskmodel's kernels, and :func:`use_private_numba_cache` gives it
one for the life of the process when it would not.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from riskmodel.errors import ModelFileError

__all__ = [
    "fsync_file",
    "Terminated",
    "sibling_path",
    "parse_sibling",
    "remove_path",
    "remove_stale_siblings",
    "remove_settled",
    "clean_up",
    "stale_siblings",
    "fsync_tree",
    "fsync_dir",
    "move_into_place",
    "check_folder_writable",
    "signals_as_exceptions",
    "signals_deferred",
    "numba_cache_problem",
    "use_private_numba_cache",
]

#: The tags a temporary sibling may carry: ``tmp`` (being written, or the old version
#: after an exchange) and ``old`` (a previous store renamed aside during a replace).
TAGS = ("tmp", "old")
_SIBLING = re.compile(r"^\.(?P<target>.+)\.(?P<pid>[0-9]+)-(?P<token>[0-9a-f]{12})\.(?P<tag>tmp|old)$")


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while a write was running (see :func:`signals_as_exceptions`).

    A ``BaseException``, like ``KeyboardInterrupt``: ``except Exception`` does not stop it,
    ``finally`` blocks and ``except BaseException`` clean-ups run.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


# ----------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------
def sibling_path(path: Path, tag: str) -> Path:
    """A fresh hidden sibling of ``path`` in the same folder: ``.<name>.<pid>-<hex12>.<tag>``."""
    if tag not in TAGS:
        raise ValueError(f"sibling tag {tag!r} is not one of {TAGS}")
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.{tag}")


def parse_sibling(entry: Path, target: Path) -> tuple[int, str] | None:
    """``(pid, tag)`` when ``entry`` is a temporary sibling of ``target`` by our naming, else None."""
    match = _SIBLING.match(entry.name)
    if match is None or match["target"] != target.name or entry.parent != target.parent:
        return None
    return int(match["pid"]), match["tag"]


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell cheaply: keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree; a missing path is fine (a symlink is unlinked, not followed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def stale_siblings(path: Path) -> list[Path]:
    """Temporary siblings of ``path`` left by writers that no longer run.

    Only names :func:`sibling_path` makes are considered, and only when their writer's
    process is gone. A ``.old`` sibling is the only copy of the previous store while the
    target is missing (a writer killed between its two renames): it is kept then.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = []
    target_exists = path.exists() or path.is_symlink()
    for entry in path.parent.iterdir():
        parsed = parse_sibling(entry, path)
        if parsed is None:
            continue
        pid, tag = parsed
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if tag == "old" and not target_exists:
            continue
        stale.append(entry)
    return sorted(stale)


def remove_stale_siblings(path: Path) -> None:
    """Delete the temporaries of ``path`` left by killed writers (see :func:`stale_siblings`)."""
    for entry in stale_siblings(path):
        remove_path(entry)


def clean_up(action: Callable[[], None]) -> None:
    """Run a clean-up to its end even when Ctrl-C or SIGTERM's exception arrives during it.

    The clean-up is restarted after such an exception, which is raised again once the
    clean-up has finished (a ``finally`` block alone would be cut short by it).
    """
    interrupted: BaseException | None = None
    while True:
        try:
            action()
            break
        except (KeyboardInterrupt, Terminated) as exc:
            interrupted = exc
    if interrupted is not None:
        raise interrupted


def remove_settled(tmp: Path, quiet: float = 0.2, limit: float = 10.0) -> None:
    """Remove a temporary until it stays removed (a folder other threads may still write into).

    zarr writes chunks from its own event-loop thread; an error in one chunk write ends the
    wait for the others but not their writes, which may recreate folders of a store just
    removed.
    """
    deadline = time.monotonic() + limit
    while True:
        remove_path(tmp)
        time.sleep(quiet)
        if not tmp.exists() or time.monotonic() > deadline:
            return


# ----------------------------------------------------------------------------------------
# durability
# ----------------------------------------------------------------------------------------
def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where folders cannot be opened."""
    if os.name != "posix":
        return
    fsync_file(folder)


def fsync_file(path: Path) -> None:
    """Flush one file (or, on POSIX, one folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush a file, or every file and folder of a directory tree, to disk."""
    path = Path(path)
    if not path.is_dir():
        fsync_file(path)
        return
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_dir(Path(root))


def _renameat2_exchange() -> object | None:
    """libc's ``renameat2`` (Linux, glibc >= 2.28), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    func = _renameat2_exchange()
    if func is None:
        return False
    rc = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished temporary ``tmp`` onto ``path`` and flush the folder.

    A file replaces the target in one ``os.replace``. A directory target is exchanged with
    ``tmp`` in one step (Linux), then the old version, now under the temporary name, is
    deleted; elsewhere the old directory is renamed aside, the new one moved in, and the
    old one deleted (if the second rename fails the old one is put back).
    """
    tmp, path = Path(tmp), Path(path)
    target_is_dir = path.is_dir() and not path.is_symlink()
    if target_is_dir or (tmp.is_dir() and path.exists()):
        if _exchange(tmp, path):
            fsync_dir(path.parent)
            remove_path(tmp)  # now the previous version
            return
        old = sibling_path(path, "old")
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)  # put the previous version back
            raise
        fsync_dir(path.parent)
        remove_path(old)
    else:
        os.replace(tmp, path)
    fsync_dir(path.parent)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, with the mode a plain ``open`` would give.

    The temporary sibling is created with mode ``0o666`` less the process umask (0644 under
    the usual umask 022), like a file written by ``open`` or a figure by matplotlib, not
    ``0o600`` as :func:`tempfile.mkstemp` makes; a file replaced keeps its own mode. The
    sibling is flushed (fsync) and renamed over ``path``; on any error or signal it is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    mode = file_mode(path)
    remove_stale_siblings(path)
    tmp = sibling_path(path, "tmp")
    with signals_as_exceptions():
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # the umask applies
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if mode is not None:
                os.chmod(tmp, mode)
            move_into_place(tmp, path)
        except BaseException:
            clean_up(lambda: remove_path(tmp))
            raise
    return path


def check_folder_writable(path: Path) -> None:
    """Raise :class:`ModelFileError` unless a file can be created next to ``path``.

    Tries it: a temporary sibling is created and removed (read-only mounts, missing
    permissions and full inode tables all show up, also for root).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ModelFileError(
            f"cannot save to {str(path)!r}: the folder {str(folder)!r} does not exist; create it first"
        )
    probe = sibling_path(path, "tmp")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ModelFileError(
            f"cannot save to {str(path)!r}: the folder {str(folder)!r} is not writable ({exc.strerror})"
        ) from None
    finally:
        clean_up(lambda: remove_path(probe))


# ----------------------------------------------------------------------------------------
# signals
# ----------------------------------------------------------------------------------------
_TERMINATING = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


_PENDING: list[int] = []  # a signal that arrived during a deferred block
_DEFERRING: list[bool] = []


def _raise_terminated(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    if _DEFERRING and not _PENDING:
        _PENDING.append(signum)
        return
    raise Terminated(signum)


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 - signal handler signature
    if _DEFERRING and not _PENDING:
        _PENDING.append(signum)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold a first Ctrl-C / SIGTERM / SIGHUP until the block ends, then raise it.

    For writes done by another thread (zarr writes its chunks from its own event loop): an
    exception in the waiting thread would not stop them, and they would recreate the
    temporary being removed. A second signal raises at once. Only the main thread, and
    only Python's default Ctrl-C handler and the handlers of :func:`signals_as_exceptions`
    are taken over.
    """
    if threading.current_thread() is not threading.main_thread() or _DEFERRING:
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)
    own_int = previous_int is signal.default_int_handler
    if own_int:
        signal.signal(signal.SIGINT, _interrupt)
    _DEFERRING.append(True)
    try:
        yield
    finally:
        _DEFERRING.clear()
        if own_int:
            signal.signal(signal.SIGINT, previous_int)
        pending = _PENDING[:]
        _PENDING.clear()
    if pending:
        if pending[0] == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(pending[0])


@contextlib.contextmanager
def signals_as_exceptions(*, own_process: bool = False) -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` while the block runs.

    Only in the main thread. By default only signals whose handler is the default one are
    taken (a program's own handlers are left alone), and when :class:`Terminated` leaves
    the block the default handler is restored and the signal raised again, so the process
    ends as the sender asked, after the block's clean-up has run. With ``own_process``
    (a command line that owns the process) the handlers are always installed and
    :class:`Terminated` is left to the caller, who ends the process itself.
    """
    installed: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _TERMINATING:
            if own_process or signal.getsignal(signum) is signal.SIG_DFL:
                installed[signum] = signal.signal(signum, _raise_terminated)
    try:
        yield
    except Terminated as exc:
        if own_process or exc.signum not in installed:
            raise
        for signum, previous in installed.items():
            signal.signal(signum, previous)
        installed.clear()
        os.kill(os.getpid(), exc.signum)
        raise  # pragma: no cover - the process has ended
    finally:
        for signum, previous in installed.items():
            signal.signal(signum, previous)


# ----------------------------------------------------------------------------------------
# numba's cache folder (checked without importing numba)
# ----------------------------------------------------------------------------------------
def _kernels_folder() -> Path:
    return Path(__file__).resolve().parent / "kernels"


def _user_cache_folder() -> Path:
    """numba's user-wide cache folder (``appdirs.user_cache_dir("numba")``)."""
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "numba" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"


def _cache_subpath(source_folder: Path) -> str:
    import hashlib

    folder = os.path.abspath(source_folder)
    return "_".join([os.path.split(folder)[-1], hashlib.sha1(folder.encode()).hexdigest()])


def _configured_cache_dir() -> str:
    config = sys.modules.get("numba.core.config")  # numba already imported: what it read
    if config is not None:
        return str(getattr(config, "CACHE_DIR", "") or "")
    return os.environ.get("NUMBA_CACHE_DIR", "")


def _writable(folder: Path) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def numba_cache_problem() -> str | None:
    """Why numba could not cache riskmodel's kernels, or None when it can.

    Follows numba's own search: ``NUMBA_CACHE_DIR``, the kernels' ``__pycache__``, the
    user-wide cache folder; each must be creatable and writable.
    """
    kernels = _kernels_folder()
    configured = _configured_cache_dir()
    candidates = []
    if configured:
        candidates.append(Path(os.path.abspath(configured)) / _cache_subpath(kernels))
    candidates += [kernels / "__pycache__", _user_cache_folder() / _cache_subpath(kernels)]
    if any(_writable(folder) for folder in candidates):
        return None
    tried = ", ".join(str(folder) for folder in candidates)
    return f"numba cannot write its cache (tried {tried})"


_PRIVATE_CACHE: list[str] = []


def use_private_numba_cache() -> str:
    """Point numba at a fresh private cache folder, removed when the process ends.

    Call before numba is imported (the setting is read once). Kernels then compile once per
    process, as without a cache; a helper process started afterwards inherits the folder.

    Raises
    ------
    ModelFileError
        Not even the temporary folder is writable.
    """
    if _PRIVATE_CACHE:
        return _PRIVATE_CACHE[0]
    try:
        folder = tempfile.mkdtemp(prefix="riskmodel-numba-cache-")
    except OSError as exc:
        raise ModelFileError(
            f"numba has no writable cache folder and the temporary folder is not writable either "
            f"({exc.strerror}); set NUMBA_CACHE_DIR to a writable folder"
        ) from None
    os.environ["NUMBA_CACHE_DIR"] = folder
    _PRIVATE_CACHE.append(folder)
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
    return folder


def file_mode(path: Path) -> int | None:
    """The permission bits of an existing ``path`` (None when it does not exist)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None
