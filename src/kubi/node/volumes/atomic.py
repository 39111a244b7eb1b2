"""Atomic projection of a set of files into a directory, laid out as the kubelet does.

The files live in a hidden timestamped directory (`..2024_05_01_10_00_00.123456789`);
`..data` links to it and each top-level entry is a link `<name> -> ..data/<name>`.
An update writes a whole new timestamped directory, points a fresh `..data_tmp`
link at it and renames that over `..data` (rename(2) is atomic), so readers see
all old or all new content; links of vanished entries and the old directory are
then removed. Identical content is a no-op, so periodic refreshes are cheap.
Names starting with `..` are reserved. The writer is synchronous and callers
serialise writes per directory.
"""

from __future__ import annotations

import os
import posixpath
import random
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"
_MAX_FILE_NAME = 255
_MAX_PATH = 4096


class PayloadError(ValueError):
    """A payload path the writer refuses (absolute, `..`, too long)."""


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = 0o644
    # Owner for files that must belong to the pod's user (service account tokens).
    uid: int | None = None
    gid: int | None = None


Payload = Mapping[str, FileProjection | tuple[bytes, int]]


def validate_path(path: str) -> None:
    if not path:
        raise PayloadError(f'invalid path: must not be empty: "{path}"')
    if path.startswith("/"):
        raise PayloadError(f"invalid path: must be relative path: {path}")
    if len(path) > _MAX_PATH:
        raise PayloadError(f"invalid path: must be less than or equal to {_MAX_PATH} characters")
    items = path.split("/")
    for item in items:
        if item == "..":
            raise PayloadError(f"invalid path: must not contain '..': {path}")
        if len(item) > _MAX_FILE_NAME:
            raise PayloadError(
                f"invalid path: filenames must be less than or equal to {_MAX_FILE_NAME} "
                "characters")
    if items[0].startswith("..") and len(items[0]) > 2:
        raise PayloadError(f"invalid path: must not start with '..': {path}")


def clean_payload(payload: Payload) -> dict[str, FileProjection]:
    clean: dict[str, FileProjection] = {}
    for path, content in payload.items():
        validate_path(path)
        if not isinstance(content, FileProjection):
            data, mode = content
            content = FileProjection(data, mode)
        clean[posixpath.normpath(path)] = content
    return clean


def timestamp_name(now: float | None = None) -> str:
    """`..YYYY_MM_DD_hh_mm_ss.` in UTC plus nine random digits, as the kubelet names it."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(time.time() if now is None else now))
    return stamp + f"{random.randrange(10**9):09d}"


class AtomicWriter:
    def __init__(self, target_dir: str) -> None:
        if not os.path.isdir(target_dir):
            raise FileNotFoundError(f"no such directory: {target_dir}")
        self.target_dir = target_dir

    def current_data_dir(self) -> str | None:
        """The timestamped directory `..data` points at, if any."""
        try:
            return os.readlink(os.path.join(self.target_dir, DATA_DIR))
        except FileNotFoundError:
            return None

    def write(self, payload: Payload,
              set_perms: Callable[[str], None] | None = None) -> bool:
        """Project `payload`; returns whether a new data directory was written.

        `set_perms` is called with the new timestamped directory's name before it
        becomes visible (ownership for fsGroup).
        """
        files = clean_payload(payload)
        old_ts = self.current_data_dir()
        to_remove: set[str] = set()
        should_write = True
        if old_ts:
            old_path = os.path.join(self.target_dir, old_ts)
            to_remove = _paths_to_remove(files, old_path)
            if not to_remove and not _content_differs(files, old_path):
                # Up to date; still make sure every visible link exists.
                should_write = False
                old_ts = None
        if should_write:
            self._swap_in(files, set_perms)
        self._create_visible_links(files)
        for path in to_remove:
            if "/" not in path:
                _remove_quietly(os.path.join(self.target_dir, path))
        if old_ts:
            shutil.rmtree(os.path.join(self.target_dir, old_ts), ignore_errors=True)
        return should_write

    def _swap_in(self, files: dict[str, FileProjection],
                 set_perms: Callable[[str], None] | None) -> None:
        ts_dir = self._new_timestamp_dir()
        ts_name = os.path.basename(ts_dir)
        try:
            _write_files(files, ts_dir)
            if set_perms is not None:
                set_perms(ts_name)
            tmp_link = os.path.join(self.target_dir, NEW_DATA_DIR)
            _remove_quietly(tmp_link)  # left over by a crash mid-update
            os.symlink(ts_name, tmp_link)
            os.rename(tmp_link, os.path.join(self.target_dir, DATA_DIR))
        except BaseException:
            _remove_quietly(os.path.join(self.target_dir, NEW_DATA_DIR))
            shutil.rmtree(ts_dir, ignore_errors=True)
            raise

    def _new_timestamp_dir(self) -> str:
        while True:
            path = os.path.join(self.target_dir, timestamp_name())
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            # Group and others must be able to traverse it whatever the umask.
            os.chmod(path, 0o755)
            return path

    def _create_visible_links(self, files: dict[str, FileProjection]) -> None:
        for path in files:
            top = path.split("/", 1)[0]
            visible = os.path.join(self.target_dir, top)
            if not os.path.lexists(visible):
                os.symlink(posixpath.join(DATA_DIR, top), visible)


def _write_files(files: dict[str, FileProjection], ts_dir: str) -> None:
    for path, projection in files.items():
        full = os.path.join(ts_dir, path)
        if "/" in path:   # the timestamped directory itself exists
            os.makedirs(os.path.dirname(full), exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(projection.data)
            while view:
                view = view[os.write(fd, view):]
            # The mode must not depend on the process umask.
            os.fchmod(fd, projection.mode & 0o7777)
            if projection.uid is not None or projection.gid is not None:
                os.fchown(fd, -1 if projection.uid is None else projection.uid,
                          -1 if projection.gid is None else projection.gid)
        finally:
            os.close(fd)


def _content_differs(files: dict[str, FileProjection], old_ts_path: str) -> bool:
    for path, projection in files.items():
        full = os.path.join(old_ts_path, path)
        try:
            with open(full, "rb") as handle:
                if handle.read() != projection.data:
                    return True
        except FileNotFoundError:
            return True
    return False


def _paths_to_remove(files: dict[str, FileProjection], old_ts_path: str) -> set[str]:
    """Entries present in the old data directory that the new payload drops."""
    present: set[str] = set()
    for root, dirs, names in os.walk(old_ts_path):
        rel_root = os.path.relpath(root, old_ts_path)
        for name in dirs + names:
            present.add(name if rel_root == "." else posixpath.join(rel_root, name))
    wanted: set[str] = set()
    for path in files:
        while path:
            wanted.add(path)
            path = posixpath.dirname(path)
    return present - wanted


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
