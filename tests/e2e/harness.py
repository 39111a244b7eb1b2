"""Start a real kubi and drive it with the real kubectl, helm and Python client.

`Cluster` owns one `kubi up` child process and a private directory holding its
data dir, kubeconfig, server output, and an isolated HOME and kubectl cache (so
a discovery cache from another cluster on a reused port never leaks in). It
waits for `/readyz` with a deadline, runs kubectl or helm as subprocesses,
starts background watchers, and tears everything down in `close()`: watchers
first, then the server (SIGTERM to its PID, SIGKILL after a deadline, then any
leftovers of the process group the harness created for it).
"""

from __future__ import annotations

import functools
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self, TextIO, cast

from tests.tools.background import Background, clean_environ
from tests.tools.binaries import ensure_helm, ensure_kubectl

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

DEFAULT_KUBECTL_VERSION = "1.33"
KUBI_COMMAND: tuple[str, ...] = (sys.executable, "-m", "kubi")


def server_command() -> list[str]:
    """The command that provides `up`: `$KUBI_TEST_SERVER` (shell words) or `python -m kubi`."""
    configured = os.environ.get("KUBI_TEST_SERVER")
    return shlex.split(configured) if configured else list(KUBI_COMMAND)


# Variables that would point kubectl or helm at state outside the cluster's directory.
_CLIENT_ENV_PREFIXES = ("KUBECONFIG", "KUBECTL_", "KUBERC", "HELM_", "XDG_")
_PORT_IN_USE_MARKERS = ("address already in use", "errno 98")
_WATCH_FLAGS = {"-w", "--watch", "--watch-only", "--watch=true", "--watch-only=true"}


class ClusterError(RuntimeError):
    """kubi failed to start or stop as the harness expected."""


class CommandFailed(subprocess.CalledProcessError):
    """A kubectl or helm command exited non-zero; str() shows its output."""

    def __str__(self) -> str:
        return (
            f"`{' '.join(map(str, self.cmd))}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def free_port() -> int:
    """A TCP port that is free on all interfaces right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One `kubi up` process and the clients that talk to it."""

    def __init__(
        self,
        base_dir: Path,
        *,
        kubectl_version: str = DEFAULT_KUBECTL_VERSION,
        command: Sequence[str] | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 60.0,
    ) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.kubeconfig = base_dir / "kubeconfig.yaml"
        self.home = base_dir / "home"
        self.cache_dir = base_dir / "kube-cache"
        self.server_output = base_dir / "server.out"
        self.kubectl_version = kubectl_version
        self.command = list(command) if command is not None else server_command()
        self.extra_args = list(extra_args)
        if "--no-controllers" in self.extra_args and not any(
                a.startswith("--disable-admission-plugins") for a in self.extra_args):
            # No service account controller makes `default`: pods are admitted
            # without a ServiceAccount, as upstream's integration tests run
            # kube-apiserver alone.
            self.extra_args.append("--disable-admission-plugins=ServiceAccount")
        self.start_timeout = start_timeout
        self.port = 0
        self.last_exit_code: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: TextIO | None = None
        self._background: list[Background] = []
        self._clients: list[ApiClient] = []
        for directory in (self.data_dir, self.home, self.cache_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start kubi and wait until it is ready; pick a free port on first start."""
        if self.running:
            raise ClusterError("kubi is already running")
        keep_port = self.port != 0
        for attempt in range(3):
            if not keep_port:
                self.port = free_port()
            self._launch()
            try:
                self._wait_ready()
                return self
            except ClusterError:
                self.stop()
                lost_race = any(m in self.log_tail(20).lower() for m in _PORT_IN_USE_MARKERS)
                # Another process may grab the probed port before kubi binds it.
                if keep_port or not lost_race or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM kubi and wait; SIGKILL it after `timeout` (long enough for the
        node agent to drain its pods). Returns its exit code."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            # A SIGSTOPped server would hold SIGTERM pending forever.
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note(f"kubi ignored SIGTERM for {timeout:g}s; sending SIGKILL")
                proc.kill()
                proc.wait()
        self._after_exit()
        return self.last_exit_code

    def kill(self, sig: int = signal.SIGKILL, *, wait: bool = True, timeout: float = 20.0) -> None:
        """Send `sig` to the kubi PID; with `wait`, wait for it to exit."""
        proc = self._require_process()
        proc.send_signal(sig)
        if wait:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                raise ClusterError(f"kubi still running {timeout:g}s after signal {sig}") from exc
            self._after_exit()

    def restart(self, *, stop_timeout: float = 20.0) -> Self:
        """Stop kubi (if running) and start it again on the same port and data dir."""
        self.stop(stop_timeout)
        self._note("restart")
        return self.start()

    def close(self) -> None:
        """Stop watchers, Python clients and kubi; safe to call more than once."""
        for background in self._background:
            background.stop()
        self._background.clear()
        for client in self._clients:
            client.close()  # type: ignore[no-untyped-call]
        self._clients.clear()
        self.stop()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- clients -------------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        version: str | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster and capture its output."""
        return self._run(self.kubectl_argv(*args, version=version), input, env, check, timeout)

    def kubectl_argv(self, *args: str, version: str | None = None) -> list[str]:
        """The full command line `kubectl()` would run, for callers that spawn it."""
        binary = ensure_kubectl(version or self.kubectl_version)
        return [
            str(binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
        ]

    def helm(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real helm against this cluster and capture its output."""
        argv = [str(ensure_helm()), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input, env, check, timeout)

    def spawn(self, *args: str, version: str | None = None) -> Background:
        """Start `kubectl <args>` in the background; it is stopped at close()."""
        name = f"bg-{len(self._background)}"
        background = Background(
            self.kubectl_argv(*args, version=version),
            stderr_path=self.base_dir / f"{name}.stderr",
            env=self.client_env(),
        )
        self._background.append(background)
        return background

    def watch(self, *args: str, version: str | None = None) -> Background:
        """Start `kubectl get <args> --watch` in the background."""
        watch_flag = [] if _WATCH_FLAGS.intersection(args) else ["--watch"]
        return self.spawn("get", *args, *watch_flag, version=version)

    def python_client(self) -> ApiClient:
        """An official `kubernetes` ApiClient configured from the admin kubeconfig."""
        from kubernetes import config

        loaded = config.new_client_from_config(str(self.kubeconfig))  # type: ignore[no-untyped-call]
        client = cast("ApiClient", loaded)
        self._clients.append(client)
        return client

    def client_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for client processes: isolated HOME, this kubeconfig."""
        env = clean_environ(_CLIENT_ENV_PREFIXES)
        env["HOME"] = str(self.home)
        env["KUBECONFIG"] = str(self.kubeconfig)
        if extra:
            env.update(extra)
        return env

    # -- diagnostics ---------------------------------------------------------------

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of kubi's captured output and of `<data-dir>/kubi.log`."""
        parts = []
        for path in (self.server_output, self.data_dir / "kubi.log"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
        return "\n".join(parts) if parts else f"(no server output under {self.base_dir})"

    # -- internals -----------------------------------------------------------------

    def _launch(self) -> None:
        argv = [
            *self.command,
            "up",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--kubeconfig",
            str(self.kubeconfig),
            *self.extra_args,
        ]
        # Held open for the life of the process; closed in _after_exit.
        self._output = open(self.server_output, "a", buffering=1)  # noqa: SIM115
        self._output.write(f"=== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n")
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.base_dir,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        proc = self._require_process()
        url = f"https://127.0.0.1:{self.port}/readyz"
        deadline = time.monotonic() + self.start_timeout
        last_problem = "not polled yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClusterError(
                    f"kubi exited with code {proc.returncode} while starting\n{self.log_tail()}"
                )
            last_problem = self._readiness_problem(url)
            if not last_problem:
                return
            time.sleep(0.1)
        raise ClusterError(
            f"kubi not ready within {self.start_timeout:g}s ({last_problem})\n{self.log_tail()}"
        )

    def _readiness_problem(self, url: str) -> str:
        """Why kubi is not ready yet, or "" when it is."""
        if not self.ca_file.exists():
            return f"no CA at {self.ca_file}"
        if not self.kubeconfig.exists():
            return f"no kubeconfig at {self.kubeconfig}"
        context = ssl.create_default_context(cafile=str(self.ca_file))
        # An empty ProxyHandler keeps a proxy from the environment out of loopback traffic.
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        try:
            with opener.open(url, timeout=2) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ssl.SSLError) as exc:
            return f"GET {url}: {exc}"
        return "" if status == 200 else f"GET {url} answered {status}"

    def _after_exit(self) -> None:
        """Record the exit code, kill leftovers of kubi's process group, close the log."""
        proc = self._proc
        if proc is None or proc.returncode is None:
            return
        self.last_exit_code = proc.returncode
        try:
            # The group was created for kubi alone (start_new_session), so this
            # reaches only children it failed to clean up.
            os.killpg(proc.pid, signal.SIGKILL)
            self._note("killed leftover processes of kubi's process group")
        except (ProcessLookupError, PermissionError):
            pass
        self._note(f"kubi exited with code {proc.returncode}")
        self._proc = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def _note(self, message: str) -> None:
        with open(self.server_output, "a") as output:
            output.write(f"=== {time.strftime('%H:%M:%S')} harness: {message}\n")

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise ClusterError("kubi is not running")
        return self._proc

    def _run(
        self,
        argv: list[str],
        input: str | None,
        env: Mapping[str, str] | None,
        check: bool,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            check=False,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self.client_env(env),
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
        return result


def bound_kubectl(
    cluster: Cluster, version: str
) -> functools.partial[subprocess.CompletedProcess[str]]:
    """`cluster.kubectl` with the kubectl version fixed, for version-parametrized tests."""
    return functools.partial(cluster.kubectl, version=version)
