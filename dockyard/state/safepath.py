"""The one door to dockyard's directories: every read, write, create, chmod, chown, rename,
unlink and mkdir under `root` and `state_dir` goes through a `Tree`.

A path below the tree's top is resolved one component at a time from a descriptor of the
top, each with `O_NOFOLLOW`, so a symlink anywhere below the top is never followed, whatever
it points at; every operation then acts on descriptors (`fchmod`, `fchown`, `renameat2`,
`unlinkat`), so a path cannot be swapped between the check and the use. The top itself may be
reached through symlinks (Docker resolves its root once). Anything dockyard expects to be a
directory or a regular file that is something else (a symlink, a FIFO, a socket, a device, a
hard link it would write) raises `Unsafe`, which names the path and what was found.

Files are opened without blocking and read with a size cap, so a FIFO or `/dev/zero` can
neither hang a run nor fill its memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import functools
import os
import stat
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dockyard.errors import DockyardError

Kind = Literal["missing", "directory", "file", "symlink", "fifo", "socket", "device"]

READ_LIMIT = 1 << 20  # resolv.conf, pid files, JSON metadata: far below a MiB
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
FICLONE = 0x40049409  # _IOW(0x94, 9, int): the ioctl that makes a file share another's data
# FICLONE's answers when the filesystem (or the pair of filesystems) cannot share data.
_NO_REFLINK = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
)
# linkat's answers when a second name cannot be made here: another filesystem, too many names
# for one inode, a filesystem without hard links, protected_hardlinks.
_NO_LINK = frozenset({errno.EXDEV, errno.EMLINK, errno.EOPNOTSUPP, errno.EPERM})
# open() on a symlink with O_NOFOLLOW, on a socket, on a device without a driver, and on a
# directory for writing.
_NOT_OPENABLE = frozenset({errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EISDIR})


class Unsafe(DockyardError):
    """Something other than what dockyard expects stands at `path`; it is left alone."""

    def __init__(self, path: Path | str, found: str, expected: str = "") -> None:
        self.path, self.found = Path(path), found
        wanted = f" where {expected} belongs" if expected else ""
        super().__init__(f"{path} is {found}{wanted}; dockyard leaves it alone, never follows it")


class TooLarge(DockyardError):
    def __init__(self, path: Path | str, limit: int) -> None:
        super().__init__(f"{path} is larger than {limit:,} bytes; not read")


@dataclass(frozen=True)
class Entry:
    """What `lstat` found at a path, never following a symlink."""

    kind: Kind
    mode: int = 0  # permission bits
    uid: int = 0
    gid: int = 0
    nlink: int = 0
    size: int = 0
    mtime: float = 0.0
    target: str | None = None  # a symlink's text, never resolved
    dev: int = 0  # the filesystem it is on

    @property
    def octal(self) -> str:
        return f"{self.mode:04o}"

    @property
    def owner(self) -> str:
        return f"{self.uid}:{self.gid}"

    def describe(self) -> str:
        """`a symlink to /elsewhere`, `a fifo`, `a hard link (2 names)`, as a message says it."""
        if self.kind == "symlink":
            return f"a symlink (to {self.target})"
        if self.kind == "file" and self.nlink > 1:
            return f"a hard link ({self.nlink} names for one file)"
        if self.kind == "file":
            return "a regular file"
        return f"a {self.kind}"


def kind_of(mode: int) -> Kind:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def _entry(st: os.stat_result, target: str | None = None) -> Entry:
    return Entry(
        kind_of(st.st_mode),
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        st.st_nlink,
        st.st_size,
        st.st_mtime,
        target,
        st.st_dev,
    )


def parts(rel: str) -> list[str]:
    """The components of a path relative to a tree; no absolute path, `..`, or empty name."""
    names = rel.split("/") if rel else []
    if any(n in ("", ".", "..") or "\0" in n for n in names):
        raise ValueError(f"not a plain relative path: {rel!r}")
    return names


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library this process runs on (renameat2 has no Python binding); loaded on the
    first rename, not at import: the spec loader imports this module too."""
    return ctypes.CDLL(None, use_errno=True)


def _renameat2(src_dir: int, src: str, dst_dir: int, dst: str, flags: int) -> None:
    result = _libc().renameat2(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), flags)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), dst)


class Tree:
    """A directory and everything below it, reached only through descriptors."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self._fd: int | None = None

    def path(self, rel: str) -> Path:
        return self.top / rel if rel else self.top

    # -- resolution -------------------------------------------------------------------------

    def _top(self) -> int:
        """The top, opened once: its path is resolved at the first operation that finds it,
        and never again, so swapping it (or a parent) for a symlink later changes nothing."""
        if self._fd is None:
            self._fd = os.open(self.top, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    @contextlib.contextmanager
    def _dir(self, rel: str) -> Iterator[int]:
        """A descriptor of the directory `rel`, every component below the top a directory."""
        top = fd = self._top()
        try:
            walked: list[str] = []
            for name in parts(rel):
                walked.append(name)
                try:
                    nxt = os.open(name, _DIR, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ENOTDIR, errno.ELOOP):
                        found = _entry(os.stat(name, dir_fd=fd, follow_symlinks=False), None)
                        target = os.readlink(name, dir_fd=fd) if found.kind == "symlink" else None
                        where = self.path("/".join(walked))
                        raise Unsafe(
                            where, _entry_with(found, target).describe(), "a directory"
                        ) from None
                    raise
                if fd != top:
                    os.close(fd)
                fd = nxt
            yield fd
        finally:
            if fd != top:
                os.close(fd)

    @contextlib.contextmanager
    def _parent(self, rel: str) -> Iterator[tuple[int, str]]:
        names = parts(rel)
        if not names:
            raise ValueError("the top of a tree has no parent in it")
        with self._dir("/".join(names[:-1])) as fd:
            yield fd, names[-1]

    def _open(self, dirfd: int, name: str, rel: str, flags: int, mode: int = 0o600) -> int:
        """A regular file, opened without ever opening anything else: first as a path only
        (O_PATH never follows, never opens a device or a FIFO), looked at, then opened again
        through that very descriptor. With O_CREAT a missing file is made new (O_EXCL)."""
        try:
            held = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            new = flags | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(name, new, mode, dir_fd=dirfd)
        try:
            st = os.fstat(held)
            if not stat.S_ISREG(st.st_mode):
                raise Unsafe(self.path(rel), self.stat(rel).describe(), "a regular file")
            again = flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)
            return os.open(f"/proc/self/fd/{held}", again | os.O_CLOEXEC)
        finally:
            os.close(held)

    # -- reading ----------------------------------------------------------------------------

    def stat(self, rel: str) -> Entry:
        """What is at `rel`; `missing` when it or a parent does not exist. A parent that is not
        a directory raises `Unsafe`."""
        try:
            if not rel:
                try:
                    return _entry(os.fstat(self._top()))
                except NotADirectoryError:  # the top is a file: say so, not "missing"
                    return _entry(os.stat(self.top))
            with self._parent(rel) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
                return _entry(st, target)
        except (FileNotFoundError, NotADirectoryError):
            return Entry("missing")

    def expect(self, rel: str, kind: Kind) -> Entry:
        """`stat`, requiring `kind` or nothing; a file must have one name."""
        found = self.stat(rel)
        if found.kind not in ("missing", kind) or (kind == "file" and found.nlink > 1):
            expected = "a directory" if kind == "directory" else "a regular file"
            raise Unsafe(self.path(rel), found.describe(), expected)
        return found

    def listdir(self, rel: str) -> list[str] | None:
        """The names in directory `rel`, sorted; None when it does not exist."""
        try:
            with self._dir(rel) as fd:
                listed = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
                try:
                    return sorted(os.listdir(listed))
                finally:
                    os.close(listed)
        except FileNotFoundError:
            return None

    def read(self, rel: str, limit: int = READ_LIMIT) -> bytes | None:
        """The whole content of regular file `rel`, or None when it does not exist."""
        try:
            with self._parent(rel) as (dirfd, name):
                fd = self._open(dirfd, name, rel, _READ)
        except FileNotFoundError:
            return None
        try:
            _require_regular(fd, self.path(rel), single=False)
            return _read_capped(fd, self.path(rel), limit)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def open_regular(self, rel: str) -> Iterator[int]:
        """A read descriptor of regular file `rel` (FileNotFoundError when missing)."""
        with self._parent(rel) as (dirfd, name):
            fd = self._open(dirfd, name, rel, _READ)
        try:
            _require_regular(fd, self.path(rel), single=False)
            yield fd
        finally:
            os.close(fd)

    # -- writing ----------------------------------------------------------------------------

    def mkdir(self, rel: str, mode: int) -> None:
        """Directory `rel` with exactly `mode`; its parent must exist."""
        if not rel:
            self.top.mkdir(mode=mode)
            _fchmod_dir(self.top, mode)
            return
        with self._parent(rel) as (fd, name):
            os.mkdir(name, mode, dir_fd=fd)
            made = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            try:
                os.fchmod(made, mode)  # whatever the umask took away
            finally:
                os.close(made)
            _fsync_fd(fd)

    def makedirs(self, rel: str, mode: int) -> None:
        """`rel` and every missing parent below the top, each a real directory."""
        names = parts(rel)
        for i in range(1, len(names) + 1):
            sub = "/".join(names[:i])
            if self.expect(sub, "directory").kind == "missing":
                with contextlib.suppress(FileExistsError):
                    self.mkdir(sub, mode)

    def set_attrs(
        self, rel: str, kind: Kind, mode: int | None = None, owner: str | None = None
    ) -> None:
        """chmod and chown `rel`, which must be a `kind` (a directory or a regular file)."""
        with self._held(rel, kind) as fd:
            if owner is not None:
                uid, gid = (int(n) for n in owner.split(":"))
                os.fchown(fd, uid, gid)
            if mode is not None:
                os.fchmod(fd, mode)

    @contextlib.contextmanager
    def _held(self, rel: str, kind: Kind) -> Iterator[int]:
        """`rel`, opened only once it is known to be a `kind`: a directory by O_DIRECTORY
        (refused before anything else is opened), a file as `_open` opens one (looked at
        through an O_PATH descriptor first: a device or a FIFO is never opened)."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        if kind == "directory":
            flags |= os.O_DIRECTORY
        if not rel:
            fd = os.open(f"/proc/self/fd/{self._top()}", flags & ~os.O_NOFOLLOW)
        else:
            with self._parent(rel) as (dirfd, name):
                try:
                    if kind == "directory":
                        fd = os.open(name, flags, dir_fd=dirfd)
                    else:
                        fd = self._open(dirfd, name, rel, flags)
                except OSError as e:
                    if e.errno not in (*_NOT_OPENABLE, errno.ENOTDIR):
                        raise
                    raise Unsafe(self.path(rel), self.stat(rel).describe(), f"a {kind}") from None
        try:
            found = _entry(os.fstat(fd))
            if found.kind != kind or (kind == "file" and found.nlink > 1):
                raise Unsafe(self.path(rel), found.describe(), f"a {kind}")
            yield fd
        finally:
            os.close(fd)

    def rmdir(self, rel: str) -> None:
        """Remove an empty directory; the kernel refuses one with content."""
        if not rel:
            self.top.rmdir()
            return
        with self._parent(rel) as (fd, name):
            os.rmdir(name, dir_fd=fd)

    def unlink(self, rel: str) -> None:
        """Remove regular file `rel` (missing is fine); anything else is refused."""
        with self._parent(rel) as (fd, name):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            found = _entry(st)
            if found.kind != "file" or found.nlink > 1:
                raise Unsafe(self.path(rel), found.describe(), "a regular file")
            self._remove_checked(fd, name, rel, lambda st: None)

    def remove_file(self, rel: str, expected: bytes, limit: int = READ_LIMIT) -> None:
        """Remove regular file `rel` only if its whole content is still `expected`: read and
        removed through the same directory descriptor, the name checked to be the file read."""
        with self._parent(rel) as (dirfd, name):
            try:
                fd = self._open(dirfd, name, rel, _READ)
            except FileNotFoundError:
                return
            try:
                _require_regular(fd, self.path(rel))
                if _read_capped(fd, self.path(rel), limit) != expected:
                    raise DockyardError(f"{self.path(rel)} changed since it was read; left alone")
                held = os.fstat(fd)

                def same(st: os.stat_result) -> str | None:
                    if (held.st_dev, held.st_ino) != (st.st_dev, st.st_ino):
                        return "was replaced since it was read"
                    return None

                self._remove_checked(dirfd, name, rel, same)
            finally:
                os.close(fd)

    def _remove_checked(
        self, dirfd: int, name: str, rel: str, problem: Callable[[os.stat_result], str | None]
    ) -> None:
        """Remove `name` after a look at what is removed, not at what was there a moment
        before: it is first moved to a name of dockyard's own (one step, never onto anything),
        looked at there, and removed only if it is a single-named regular file that `problem`
        has nothing against; anything else goes back (or, if its name was taken meanwhile,
        stays beside it, and the error says where)."""
        try:
            aside = _aside(dirfd, name)
        except FileNotFoundError:
            return  # gone meanwhile: nothing to remove
        st = os.stat(aside, dir_fd=dirfd, follow_symlinks=False)
        found = _entry(st, os.readlink(aside, dir_fd=dirfd) if stat.S_ISLNK(st.st_mode) else None)
        wrong = found.kind != "file" or found.nlink > 1
        why = None if wrong else problem(st)
        if not wrong and why is None:
            os.unlink(aside, dir_fd=dirfd)
            _fsync_fd(dirfd)
            return
        try:
            _renameat2(dirfd, aside, dirfd, name, _RENAME_NOREPLACE)
            left = ""
        except FileExistsError:
            left = f" (left as {self.path(rel).parent / aside}: its name was taken meanwhile)"
        if wrong:
            raise Unsafe(self.path(rel), found.describe() + left, "a regular file")
        raise DockyardError(f"{self.path(rel)} {why}; not removed{left}")

    def symlink(self, rel: str, target: str) -> None:
        """A new symlink at `rel` (never followed by dockyard; Docker's init layer has one)."""
        with self._parent(rel) as (fd, name):
            os.symlink(target, name, dir_fd=fd)

    def rename(self, src: str, dst: str, replace: bool = False) -> None:
        """Move `src` to `dst` within the tree; never onto something that exists, unless
        `replace`, and then only onto a regular file."""
        with self._parent(src) as (sfd, sname), self._parent(dst) as (dfd, dname):
            if replace:
                self._replace(sfd, sname, dfd, dname, dst)
            else:
                _renameat2(sfd, sname, dfd, dname, _RENAME_NOREPLACE)
            _fsync_fd(dfd)
            _fsync_fd(sfd)

    def _replace(self, sfd: int, sname: str, dfd: int, dname: str, dst: str) -> None:
        """Move `sname` onto `dname`, replacing only a single-named regular file. The two are
        exchanged in one step and what was swapped out is looked at afterwards: anything
        else (even put there an instant before) is exchanged back and refused, never
        replaced. Where the filesystem cannot exchange, it is looked at just before."""
        for _ in range(3):
            try:
                _renameat2(sfd, sname, dfd, dname, _RENAME_EXCHANGE)
            except FileNotFoundError:  # nothing to replace
                try:
                    _renameat2(sfd, sname, dfd, dname, _RENAME_NOREPLACE)
                    return
                except FileExistsError:
                    continue  # made in between: exchange with it
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
                self.expect(dst, "file")
                os.rename(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd)
                return
            st = os.stat(sname, dir_fd=sfd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                os.unlink(sname, dir_fd=sfd)
                return
            target = os.readlink(sname, dir_fd=sfd) if stat.S_ISLNK(st.st_mode) else None
            _renameat2(sfd, sname, dfd, dname, _RENAME_EXCHANGE)
            found = _entry(st, target)
            raise Unsafe(self.path(dst), found.describe(), "a regular file")
        raise FileExistsError(errno.EEXIST, "kept appearing while it was replaced", dst)

    def write(
        self, rel: str, data: bytes, mode: int, owner: str | None = None, replace: bool = True
    ) -> bool:
        """Put `data` at `rel` atomically (temporary file, fsync, rename, fsync the directory).
        With `replace=False`, only if nothing is there: False when something was. A target that
        is not a single-named regular file is refused, never replaced."""
        with self._parent(rel) as (dirfd, name):
            tmp, fd = _temporary(dirfd, name, mode)
            try:
                try:
                    if owner is not None:
                        uid, gid = (int(n) for n in owner.split(":"))
                        os.fchown(fd, uid, gid)
                    os.fchmod(fd, mode)
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if replace:
                    self._replace(dirfd, tmp, dirfd, name, rel)
                else:
                    try:
                        _renameat2(dirfd, tmp, dirfd, name, _RENAME_NOREPLACE)
                    except FileExistsError:
                        return False
                tmp = ""
                _fsync_fd(dirfd)
                return True
            finally:
                if tmp:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp, dir_fd=dirfd)

    def append(self, rel: str, data: bytes, mode: int = 0o600) -> None:
        """Add `data` to the end of regular file `rel` (created when missing), durably."""
        with self._parent(rel) as (dirfd, name):
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
            fd = self._open(dirfd, name, rel, flags, mode)
        try:
            _require_regular(fd, self.path(rel))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def open_private(self, rel: str) -> Iterator[int]:
        """A read-write descriptor of regular file `rel`, created 0600 when missing (a lock)."""
        with self._parent(rel) as (dirfd, name):
            fd = self._open(dirfd, name, rel, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK)
        try:
            _require_regular(fd, self.path(rel))
            yield fd
        finally:
            os.close(fd)

    def touch(self, rel: str) -> None:
        """Set the modification time of `rel` to now, creating it (0600) when missing."""
        with self.open_private(rel) as fd:
            os.utime(fd)

    # -- whole directories (vfs snapshots) ---------------------------------------------------

    @contextlib.contextmanager
    def open_dir(self, rel: str) -> Iterator[Dir]:
        """Directory `rel`, held open for the operations of `Dir` (FileNotFoundError when
        missing; a symlink or anything else on the way is `Unsafe`)."""
        with self._dir(rel) as held:
            fd = os.open(".", _OPEN_DIR, dir_fd=held)
        try:
            yield Dir(fd, self.path(rel))
        finally:
            os.close(fd)

    def statvfs(self, rel: str) -> os.statvfs_result:
        """The free space and inodes of the filesystem that holds directory `rel`."""
        with self.open_dir(rel) as d:
            return os.statvfs(d.fd)

    def can_reflink(self, src: str, into: str) -> bool:
        """Whether directory `into`'s filesystem can share the data of regular file `src` by
        reflink (FICLONE), tried on a file with no name there: nothing is left behind."""
        with self.open_regular(src) as source, self.open_dir(into) as d:
            tmp = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=d.fd)
            try:
                fcntl.ioctl(tmp, FICLONE, source)
                return True
            except OSError as e:
                if e.errno in _NO_REFLINK:
                    return False
                raise
            finally:
                os.close(tmp)

    def sync(self, rel: str) -> None:
        """Write everything of the filesystem that holds directory `rel` to disk (syncfs)."""
        with self.open_dir(rel) as d:
            if _libc().syncfs(d.fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(d.path))


@dataclass(frozen=True)
class Node:
    """One entry of a directory as lstat saw it, never followed."""

    name: str
    kind: Kind
    fmt: int  # the file type bits (S_IFMT)
    mode: int  # permission bits, with setuid, setgid and sticky
    uid: int
    gid: int
    size: int
    nlink: int
    dev: int
    ino: int
    rdev: int
    atime_ns: int
    mtime_ns: int
    target: str | None = None  # a symlink's text

    @property
    def inode(self) -> tuple[int, int]:
        return (self.dev, self.ino)


def _node(name: str, st: os.stat_result, target: str | None = None) -> Node:
    return Node(
        name,
        kind_of(st.st_mode),
        stat.S_IFMT(st.st_mode),
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        st.st_size,
        st.st_nlink,
        st.st_dev,
        st.st_ino,
        st.st_rdev,
        st.st_atime_ns,
        st.st_mtime_ns,
        target,
    )


@dataclass
class Sharing:
    """What this run learnt about sharing data between two filesystems: once FICLONE fails
    from one to the other, it is not tried again for that pair."""

    no_reflink: set[tuple[int, int]] = dataclasses.field(default_factory=set)


class Dir:
    """A directory below a tree's top, held open. Every operation names an entry of this
    directory relative to its descriptor and never follows a symlink; a new entry is made
    whole (content, owner, mode, extended attributes, times) before it gets its name, so a
    crash leaves either nothing or all of it. Reached only through `Tree.open_dir` and
    `child`."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    def node(self) -> Node:
        """This directory itself."""
        return _node("", os.fstat(self.fd))

    def scan(self) -> list[Node]:
        """Every entry, by name; symlinks are read, never followed."""
        out = []
        with os.scandir(self.fd) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                link = os.readlink(entry.name, dir_fd=self.fd) if stat.S_ISLNK(st.st_mode) else None
                out.append(_node(entry.name, st, link))
        return sorted(out, key=lambda n: n.name)

    def lookup(self, name: str) -> Node | None:
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        link = os.readlink(name, dir_fd=self.fd) if stat.S_ISLNK(st.st_mode) else None
        return _node(name, st, link)

    @contextlib.contextmanager
    def child(self, name: str) -> Iterator[Dir]:
        """Subdirectory `name`; anything else there is `Unsafe`."""
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=self.fd)
        except OSError as e:
            if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            found = self.lookup(name)
            what = "gone" if found is None else describe(found)
            raise Unsafe(self.path / name, what, "a directory") from None
        try:
            yield Dir(fd, self.path / name)
        finally:
            os.close(fd)

    def make_dir(self, name: str) -> None:
        """A new, private directory (0700 until `set_meta` gives it its own mode)."""
        os.mkdir(name, 0o700, dir_fd=self.fd)

    def xattrs(self) -> dict[str, bytes]:
        return _xattrs(self.fd, self.path)

    def set_meta(self, node: Node, xattrs: dict[str, bytes]) -> None:
        """Owner, mode, extended attributes and times of this directory, as `node` has them
        (times last: making entries in a directory changes its mtime)."""
        _set_meta(self.fd, node, xattrs, self.path)

    def put_file(self, name: str, source: Dir, node: Node, link: bool, sharing: Sharing) -> str:
        """New entry `name`: regular file `node` of `source`, sharing its data when the
        filesystem can -- a reflink (FICLONE) first, then, when `link`, a hard link (the same
        inode: never for a file that will be written), else a copy. Says which it made:
        "reflink", "link" or "copy"."""
        with _held_regular(source, node) as held:
            pair = (node.dev, os.fstat(self.fd).st_dev)
            if link and pair in sharing.no_reflink and self._link(name, held):
                return "link"
            src = os.open(f"/proc/self/fd/{held}", os.O_RDONLY | os.O_CLOEXEC)
            tmp = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=self.fd)
            try:
                how = "reflink" if _reflink(src, tmp, pair, sharing) else ""
                if not how and link and self._link(name, held):
                    return "link"
                if not how:
                    _copy(src, tmp)
                    how = "copy"
                _set_meta(tmp, node, _xattrs(src, source.path / name), self.path / name)
                os.link(f"/proc/self/fd/{tmp}", name, dst_dir_fd=self.fd, follow_symlinks=True)
                return how
            finally:
                os.close(tmp)
                os.close(src)

    def _link(self, name: str, held: int) -> bool:
        try:
            os.link(f"/proc/self/fd/{held}", name, dst_dir_fd=self.fd, follow_symlinks=True)
        except OSError as e:
            if e.errno in _NO_LINK:
                return False
            raise
        return True

    def link_to(self, name: str, existing: Dir, node: Node) -> None:
        """New name `name` for regular file `node` of `existing` (a file this run made: the
        other names of a hard-linked file)."""
        with _held_regular(existing, node) as held:
            os.link(f"/proc/self/fd/{held}", name, dst_dir_fd=self.fd, follow_symlinks=True)

    def put_symlink(self, name: str, node: Node) -> None:
        """Symlink `name` to `node`'s target, with its owner and times. One already there with
        that target (an interrupted run made it) is given them again."""
        assert node.target is not None
        try:
            os.symlink(node.target, name, dir_fd=self.fd)
        except FileExistsError:
            found = self.lookup(name)
            if found is None or found.kind != "symlink" or found.target != node.target:
                raise
        os.chown(name, node.uid, node.gid, dir_fd=self.fd, follow_symlinks=False)
        os.utime(name, ns=(node.atime_ns, node.mtime_ns), dir_fd=self.fd, follow_symlinks=False)

    def put_special(self, name: str, node: Node) -> None:
        """Device, FIFO or socket `name` like `node` (never opened). One already there of the
        same type (an interrupted run made it) is given its owner, mode and times again."""
        try:
            os.mknod(name, node.fmt | 0o600, node.rdev, dir_fd=self.fd)
        except FileExistsError:
            found = self.lookup(name)
            if found is None or (found.fmt, found.rdev) != (node.fmt, node.rdev):
                raise
        held = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        try:
            if stat.S_IFMT(os.fstat(held).st_mode) != node.fmt:
                raise Unsafe(self.path / name, "replaced while dockyard made it")
            os.chown(name, node.uid, node.gid, dir_fd=self.fd, follow_symlinks=False)
            os.chmod(f"/proc/self/fd/{held}", node.mode)  # the node itself: not a symlink
        finally:
            os.close(held)
        os.utime(name, ns=(node.atime_ns, node.mtime_ns), dir_fd=self.fd, follow_symlinks=False)


def describe(node: Node) -> str:
    """`a symlink (to /elsewhere)`, `a fifo`, as a message says it."""
    return Entry(node.kind, nlink=node.nlink, target=node.target).describe()


@contextlib.contextmanager
def _held_regular(where: Dir, node: Node) -> Iterator[int]:
    """An O_PATH descriptor of `node`, which must still be the regular file lstat saw."""
    held = os.open(node.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=where.fd)
    try:
        st = os.fstat(held)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != node.inode:
            raise Unsafe(where.path / node.name, "no longer the file dockyard looked at")
        yield held
    finally:
        os.close(held)


def _reflink(src: int, dst: int, pair: tuple[int, int], sharing: Sharing) -> bool:
    if pair in sharing.no_reflink:
        return False
    try:
        fcntl.ioctl(dst, FICLONE, src)
    except OSError as e:
        if e.errno not in _NO_REFLINK:
            raise
        sharing.no_reflink.add(pair)
        return False
    return True


def _copy(src: int, dst: int) -> None:
    """All of `src` into `dst`, in the kernel where it can."""
    copied = 0
    while True:
        try:
            n = os.copy_file_range(src, dst, 1 << 30)
        except OSError as e:
            if copied or e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            break
        if n == 0:
            return
        copied += n
    while chunk := os.read(src, 1 << 20):
        _write_all(dst, chunk)


def _xattrs(fd: int, path: Path) -> dict[str, bytes]:
    try:
        return {k: os.getxattr(fd, k) for k in os.listxattr(fd)}
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            return {}
        raise OSError(e.errno, e.strerror, str(path)) from None


def _set_meta(fd: int, node: Node, xattrs: dict[str, bytes], path: Path) -> None:
    """Owner first (a chown clears setuid bits and file capabilities), then mode, extended
    attributes, and times last."""
    try:
        os.fchown(fd, node.uid, node.gid)
        os.fchmod(fd, node.mode)
        for key, value in xattrs.items():
            os.setxattr(fd, key, value)
        os.utime(fd, ns=(node.atime_ns, node.mtime_ns))
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def _entry_with(found: Entry, target: str | None) -> Entry:
    return dataclasses.replace(found, target=target)


def _require_regular(fd: int, path: Path, single: bool = True) -> None:
    """A regular file; with `single`, one with no other name (a file dockyard writes: a hard
    link would carry the write to wherever its other name is)."""
    found = _entry(os.fstat(fd))
    if found.kind != "file" or (single and found.nlink > 1):
        raise Unsafe(path, found.describe(), "a regular file")


def _read_capped(fd: int, path: Path, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, min(1 << 16, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(path, limit)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _temporary(dirfd: int, name: str, mode: int) -> tuple[str, int]:
    """A new file beside `name`, and the descriptor that made it: written through that
    descriptor, never opened again by name (which another process could swap)."""
    for attempt in range(100):
        tmp = f".{name}.{os.getpid()}.{attempt}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return tmp, os.open(tmp, flags, mode & 0o600, dir_fd=dirfd)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)


def _aside(dirfd: int, name: str) -> str:
    """`name` moved to a free name beside it (never onto anything); that name."""
    for attempt in range(100):
        aside = f".{name}.{os.getpid()}.{attempt}.removed"
        try:
            _renameat2(dirfd, name, dirfd, aside, _RENAME_NOREPLACE)
            return aside
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free name to move it aside", name)


def _fsync_fd(dirfd: int) -> None:
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fchmod_dir(path: Path, mode: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


class NotRegular(DockyardError):
    """A host file that is a directory, a FIFO, a socket or a device: never read."""

    def __init__(self, path: Path, st: os.stat_result) -> None:
        self.path, self.mode = path, st.st_mode
        super().__init__(f"{path} is {_entry(st).describe()}, not a regular file; not read")


def read_file(path: Path, limit: int = READ_LIMIT) -> bytes:
    """A host file outside dockyard's trees (`/etc/resolv.conf`, the spec, a pid file): its
    symlinks are the system's and are followed, but it must end at a regular file. It is
    looked at before it is opened (opening a device can act), opened without blocking, looked
    at again (it may have been replaced in between) and read with a cap. FileNotFoundError
    when it does not exist; `NotRegular`, `TooLarge`."""
    _require_file(path, os.stat(path), limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        _require_file(path, os.fstat(fd), limit)
        return _read_capped(fd, path, limit)
    finally:
        os.close(fd)


def _require_file(path: Path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(path, st)
    if st.st_size > limit:
        raise TooLarge(path, limit)
