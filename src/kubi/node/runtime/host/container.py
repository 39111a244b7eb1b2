"""Turning a freshly forked child into a container process, then exec'ing it.

This runs after fork and before exec, in a single-threaded child, so it only
makes system calls: join the container's cgroups, enter the pod's namespaces
(net, uts, ipc; a container's mount namespace for exec), and for a new
container build its own mount namespace from the node's: a private /proc
when it has its own pid namespace, the pod's /etc/hosts, /etc/resolv.conf,
/etc/hostname and /dev/shm, then its volumes at their mountPath. Then the
user, the working directory and the exec. Progress is reported on a pipe
that exec closes: the child's pid as the node numbers it, the mount points
it had to create, or the error that stopped it (the child then exits 127).
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import signal
import stat
import termios
from typing import Any, NoReturn

from kubi.node.runtime.host import linux

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StartError(Exception):
    """The process could not be started; the message is what users see."""


class ProcessSpec:
    """The process to start, as requests.process describes it. A plain class:
    dataclasses would bring inspect, ast and dis into the launcher, whose
    every fork copies page tables for all it has loaded."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, cwd: str = "",
                 uid: int | None = None, gid: int | None = None, tty: bool = False,
                 cgroup_join: list[str] | None = None, join: list[str] | None = None,
                 new_mount_ns: bool = False, mount_proc: bool = False,
                 pod_files: dict[str, str] | None = None,
                 mounts: list[dict[str, Any]] | None = None) -> None:
        self.argv = argv
        self.env = env or {}
        self.cwd = cwd
        self.uid = uid
        self.gid = gid
        self.tty = tty
        # Files to write "0" into to join the container's cgroups (Cgroups.join_files).
        self.cgroup_join = cgroup_join or []
        # Namespaces to join, in this order, from fds the parent opened.
        self.join = join or []
        self.new_mount_ns = new_mount_ns
        self.mount_proc = mount_proc
        # Files of the pod bound over node paths: {"/etc/hosts": "<state>/hosts", ...}.
        self.pod_files = pod_files or {}
        # Volumes: {"host_path", "container_path", "readonly", "is_file"}.
        self.mounts = mounts or []

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessSpec:
        return cls(**data)


def container_env(env: dict[str, str], *, hostname: str, uid: int | None,
                  tty: bool) -> dict[str, str]:
    """The environment a container starts with: the pod's variables over the
    defaults a container runtime sets (PATH, HOSTNAME, HOME, TERM for a tty)."""
    result = {"PATH": DEFAULT_PATH}
    if hostname:
        result["HOSTNAME"] = hostname
    if tty:
        result["TERM"] = "xterm"
    result.update(env)
    if "HOME" not in result:
        result["HOME"] = _home(0 if uid is None else uid)
    return result


def _home(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_dir or "/"
    except KeyError:
        return "/"


def resolve_executable(name: str, path: str) -> str:
    if "/" in name:
        if not os.path.exists(name):
            raise StartError(f'exec: "{name}": stat {name}: no such file or directory')
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise StartError(f'exec: "{name}": permission denied')
        return name
    for directory in path.split(":"):
        # Joined by hand, stat'ed once: this runs in the container's fresh fork.
        candidate = f"{directory or '.'}/{name}"
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and os.access(candidate, os.X_OK):
            return candidate
    raise StartError(f'exec: "{name}": executable file not found in $PATH')


def _make_mount_point(target: str, is_file: bool, created: list[str]) -> None:
    parent = target if not is_file else os.path.dirname(target)
    missing = []
    probe = parent
    while probe and probe != "/" and not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for d in reversed(missing):
        # Another container starting at once may make the same mount point.
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            continue
        created.append(d)
    if is_file and not os.path.lexists(target):
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        except FileExistsError:
            return
        created.append(target)


def _bind(source: str, target: str, readonly: bool) -> None:
    try:
        linux.mount(source, target, None, linux.MS_BIND | linux.MS_REC)
        if readonly:
            # A remount replaces the flags: keep nosuid/nodev/noexec the source had.
            kept = os.statvfs(target).f_flag & (linux.MS_NOSUID | linux.MS_NODEV
                                                 | linux.MS_NOEXEC)
            linux.mount(None, target, None,
                        linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | kept)
    except OSError as exc:
        raise StartError(f'error mounting "{source}" to "{target}": '
                         f"{os.strerror(exc.errno or 0)}") from None


def build_mount_namespace(spec: ProcessSpec, created: list[str]) -> None:
    linux.unshare(linux.CLONE_NEWNS)
    # Slave: mounts made here never reach the node, the node's unmounts reach here.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
    if spec.mount_proc:
        linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    for target, source in spec.pod_files.items():
        if os.path.exists(target):
            _bind(source, target, False)
    for m in sorted(spec.mounts, key=lambda m: m["container_path"].rstrip("/").count("/")):
        target = os.path.normpath(m["container_path"])
        if not os.path.exists(m["host_path"]):
            raise StartError(f'error mounting "{m["host_path"]}" to "{target}": '
                             "no such file or directory")
        _make_mount_point(target, bool(m.get("is_file")), created)
        _bind(m["host_path"], target, bool(m.get("readonly")))


def _set_user(spec: ProcessSpec) -> None:
    if spec.uid is None and spec.gid is None:
        return
    uid = 0 if spec.uid is None else spec.uid
    gid = spec.gid
    if gid is None:
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = 0
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)


def _change_directory(cwd: str, created: list[str]) -> None:
    if cwd and not os.path.isdir(cwd):
        _make_mount_point(cwd, False, created)


def setup_and_exec(spec: ProcessSpec, ns_fds: dict[str, int], stdio: tuple[int, int, int],
                   report_fd: int) -> NoReturn:
    """Everything between fork and exec; never returns."""
    created: list[str] = []
    try:
        # Our pid as the node numbers it (the parent may see another one, from
        # inside a PID namespace): /proc is still the node's here. Formatted by
        # hand: every module this fork touches costs it copied pages.
        os.write(report_fd, b'{"pid":' + os.readlink("/proc/self").encode() + b"}\n")
        # Python ignores these two; an exec'd program must start with the defaults.
        linux.default_signals(signal.SIGPIPE, signal.SIGXFSZ)
        linux.unblock_signals()
        os.setsid()
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        if spec.tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for path in spec.cgroup_join:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for name in spec.join:
            linux.setns(ns_fds[name], linux.NAMESPACE_FLAGS[name])
        if spec.new_mount_ns:
            build_mount_namespace(spec, created)
        _change_directory(spec.cwd, created)
        executable = resolve_executable(spec.argv[0], spec.env.get("PATH", DEFAULT_PATH))
        _set_user(spec)
        try:
            os.chdir(spec.cwd or "/")
        except OSError as exc:
            raise StartError(f"chdir to cwd (\"{spec.cwd}\") set in config.json failed: "
                             f"{os.strerror(exc.errno or 0)}") from None
        linux.die_with_parent()
        if created:
            os.write(report_fd, json.dumps({"created": created}).encode() + b"\n")
        os.execve(executable, spec.argv, spec.env)
    except StartError as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.strerror or exc}"
    except BaseException as exc:  # noqa: BLE001 - whatever happens must reach the parent
        message = repr(exc)
    try:
        report = {"error": message}
        if created:
            report["created"] = created  # type: ignore[assignment]
        os.write(report_fd, json.dumps(report).encode() + b"\n")
    finally:
        os._exit(127)


def read_report(fd: int) -> dict[str, Any]:
    """The parent's side: read until exec closes the pipe. The report holds the
    child's pid as the node numbers it, and an "error" if it could not start."""
    report: dict[str, Any] = {}
    for line in linux.read_all(fd).split(b"\n"):
        if line.strip():
            report.update(json.loads(line))
    return report
