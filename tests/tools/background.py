"""Child processes that run beside a test and whose output the test waits on.

`Background` starts a command (typically `kubectl get -w`, `kubectl logs -f`,
`kubectl rollout status`) in its own session, collects its stdout line by line
on a reader thread, and lets the test block until a line matching a pattern
shows up, with a deadline instead of sleeps. stderr goes to a file so a chatty
child can never fill a pipe and stall. `stop()` ends only this child's PID and
is safe to call twice, so fixtures can call it unconditionally at teardown.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


class WaitTimeout(AssertionError):
    """A condition a test waited for did not happen before its deadline."""


class Background:
    """A running child process with its stdout collected into `lines`."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        stderr_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.stderr_path = stderr_path
        self._lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        # Held open for the life of the child; closed in stop().
        self._stderr_file = open(stderr_path, "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"background-{self._proc.pid}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    @property
    def lines(self) -> list[str]:
        """A snapshot of the stdout lines received so far, without newlines."""
        with self._changed:
            return list(self._lines)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, start: int = 0
    ) -> str:
        """Block until a stdout line at index >= `start` matches `pattern`; return it.

        Every line received is searched, not only those arriving after the call,
        so a line printed before the test started waiting still counts.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        index = start
        with self._changed:
            while True:
                for line in self._lines[index:]:
                    if regex.search(line):
                        return line
                index = max(index, len(self._lines))
                if self._eof:
                    raise WaitTimeout(self._describe(f"exited before printing /{regex.pattern}/"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(
                        self._describe(f"printed no /{regex.pattern}/ within {timeout:g}s")
                    )
                self._changed.wait(remaining)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the child to exit by itself and for its output to be read."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout(self._describe(f"still running after {timeout:g}s")) from exc
        self._reader.join(timeout)
        return code

    def stop(self, timeout: float = 5.0) -> int | None:
        """Terminate the child (SIGTERM, then SIGKILL after `timeout`) and close files."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(timeout)
        if not self._stderr_file.closed:
            self._stderr_file.close()
        return self._proc.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        with self._proc.stdout:
            for raw in self._proc.stdout:
                with self._changed:
                    self._lines.append(raw.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def _describe(self, problem: str) -> str:
        stdout = "\n".join(self.lines[-40:])
        stderr = "\n".join(self.stderr.splitlines()[-20:])
        return (
            f"`{' '.join(self.argv)}` (pid {self.pid}) {problem}\n"
            f"--- stdout (last 40 lines) ---\n{stdout}\n--- stderr ---\n{stderr}"
        )


def clean_environ(drop_prefixes: Sequence[str]) -> dict[str, str]:
    """A copy of os.environ without the variables whose names start with a prefix."""
    return {
        name: value
        for name, value in os.environ.items()
        if not any(name.startswith(prefix) for prefix in drop_prefixes)
    }
