"""The end-to-end harness, exercised against a stand-in `kubi up` and plain children."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Cluster, ClusterError, CommandFailed
from tests.tools.background import Background, WaitTimeout

STANDIN = Path(__file__).resolve().parents[1] / "tools" / "standin_kubi.py"
STANDIN_COMMAND = (sys.executable, str(STANDIN))


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, command=STANDIN_COMMAND, start_timeout=30) as cluster:
        yield cluster


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it no longer runs, which is what matters.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_start_waits_until_ready_and_kubeconfig_is_written(standin: Cluster) -> None:
    assert standin.running
    assert standin.port > 0
    assert standin.kubeconfig.exists()
    assert standin.ca_file.exists()
    assert "serving on" in standin.log_tail()


def test_kubectl_reaches_the_server(standin: Cluster) -> None:
    result = standin.kubectl("version", "-o", "json")
    info = json.loads(result.stdout)
    assert info["serverVersion"]["gitVersion"] == "v1.33.0-standin"
    assert info["clientVersion"]["minor"] == "33"


def test_kubectl_version_can_be_chosen_per_call(standin: Cluster) -> None:
    result = standin.kubectl("version", "-o", "json", version="1.34")
    assert json.loads(result.stdout)["clientVersion"]["minor"] == "34"


def test_failing_kubectl_raises_with_its_output(standin: Cluster) -> None:
    with pytest.raises(CommandFailed) as failure:
        standin.kubectl("get", "--raw", "/api/v1/nothing")
    assert failure.value.returncode != 0
    assert "--- stderr ---" in str(failure.value)
    unchecked = standin.kubectl("get", "--raw", "/api/v1/nothing", check=False)
    assert unchecked.returncode != 0


def test_client_environment_is_isolated(standin: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/elsewhere/config")
    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere/cache")
    env = standin.client_env({"EXTRA": "1"})
    assert env["HOME"] == str(standin.home)
    assert env["KUBECONFIG"] == str(standin.kubeconfig)
    assert "XDG_CACHE_HOME" not in env
    assert env["EXTRA"] == "1"
    argv = standin.kubectl_argv("get", "pods")
    assert f"--cache-dir={standin.cache_dir}" in argv


def test_python_client_uses_the_kubeconfig(standin: Cluster) -> None:
    from kubernetes.client import VersionApi

    info = VersionApi(standin.python_client()).get_code()
    assert info.git_version == "v1.33.0-standin"


def test_helm_runs(standin: Cluster) -> None:
    assert standin.helm("version", "--short").stdout.startswith("v4.")


def test_stop_is_graceful_and_idempotent(standin: Cluster) -> None:
    assert standin.stop() == 0
    assert not standin.running
    assert standin.stop() == 0


def test_kill_then_restart_keeps_port_and_data_dir(standin: Cluster) -> None:
    port = standin.port
    standin.kill(signal.SIGKILL)
    assert standin.last_exit_code == -signal.SIGKILL
    assert not standin.running
    standin.restart()
    assert standin.running
    assert standin.port == port
    assert standin.kubectl("version", "-o", "json").returncode == 0


def test_stop_resumes_a_stopped_server(standin: Cluster) -> None:
    standin.kill(signal.SIGSTOP, wait=False)
    assert standin.stop(timeout=10) == 0


def test_leftover_children_are_killed_with_the_server(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, command=STANDIN_COMMAND, extra_args=["--leave-child"])
    with cluster:
        child = int((cluster.data_dir / "child.pid").read_text())
        assert _pid_alive(child)
    deadline = time.monotonic() + 5
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child)


def test_start_failure_reports_server_output(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, command=STANDIN_COMMAND, extra_args=["--fail"])
    with pytest.raises(ClusterError, match="failing on purpose"):
        cluster.start()
    assert not cluster.running
    assert cluster.last_exit_code == 3


def test_start_times_out_when_never_ready(tmp_path: Path) -> None:
    silent = (sys.executable, "-c", "import time; time.sleep(120)")
    cluster = Cluster(tmp_path, command=silent, start_timeout=1)
    with pytest.raises(ClusterError, match="not ready within 1s"), cluster:
        pass
    assert not cluster.running


def test_watch_adds_the_watch_flag_once(standin: Cluster) -> None:
    assert standin.watch("pods").argv[-3:] == ["get", "pods", "--watch"]
    assert standin.watch("pods", "-w").argv[-3:] == ["get", "pods", "-w"]


def test_close_stops_background_kubectl(standin: Cluster) -> None:
    proxy = standin.spawn("proxy", "--port=0")
    proxy.wait_for_line(r"Starting to serve on 127\.0\.0\.1:\d+", timeout=20)
    assert proxy.returncode is None
    standin.close()
    assert proxy.returncode is not None


def _python(code: str, tmp_path: Path) -> Background:
    return Background([sys.executable, "-u", "-c", code], stderr_path=tmp_path / "child.stderr")


def test_background_waits_for_a_matching_line(tmp_path: Path) -> None:
    code = "import time\nprint('one')\ntime.sleep(0.3)\nprint('ready 7')\ntime.sleep(60)"
    with _python(code, tmp_path) as child:
        assert child.wait_for_line(r"ready \d", timeout=10) == "ready 7"
        assert child.wait_for_line("one") == "one"
        assert child.lines == ["one", "ready 7"]
        with pytest.raises(WaitTimeout, match="within 0.2s"):
            child.wait_for_line("one", timeout=0.2, start=1)
    assert child.returncode == -signal.SIGTERM


def test_background_reports_early_exit_with_stderr(tmp_path: Path) -> None:
    code = "import sys\nprint('partial')\nsys.stderr.write('boom\\n')\nsys.exit(2)"
    child = _python(code, tmp_path)
    with pytest.raises(WaitTimeout, match="(?s)exited before.*partial.*boom"):
        child.wait_for_line("never", timeout=10)
    assert child.wait() == 2
    child.stop()
    assert child.stop() == 2
