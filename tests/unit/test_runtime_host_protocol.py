"""Frames and names of the host runtime's internal protocol; records on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    Mount,
    SandboxConfig,
)
from kubi.node.runtime.host import protocol, requests
from kubi.node.runtime.host.cgroups import cpu_quota_us
from kubi.node.runtime.host.container import StartError, container_env, resolve_executable
from kubi.node.runtime.host.records import ContainerRecord, SandboxRecord
from kubi.node.runtime.host.shim import exit_reason
from kubi.node.runtime.host.state import read_json, write_json


def test_frames_round_trip_and_wait_for_completion() -> None:
    data = protocol.frame(protocol.STDIN, b"abc") + protocol.frame(protocol.STDIN_CLOSE)
    buffer = bytearray(data[:4])
    assert protocol.parse_frames(buffer) == []
    buffer += data[4:] + protocol.frame(protocol.RESIZE)[:2]
    assert protocol.parse_frames(buffer) == [(protocol.STDIN, b"abc"),
                                             (protocol.STDIN_CLOSE, b"")]
    assert len(buffer) == 2


def test_addresses_are_abstract_and_distinct() -> None:
    a = protocol.launcher_address("/var/lib/kubi/a")
    b = protocol.launcher_address("/var/lib/kubi/b")
    assert a.startswith("\0") and a != b
    assert protocol.holder_address("/var/lib/kubi/a") not in (a, b)
    assert protocol.pod_address("abc") == "\0kubi-pod-abc"


def test_cpu_quota() -> None:
    assert cpu_quota_us(500) == 50_000
    assert cpu_quota_us(2000) == 200_000
    assert cpu_quota_us(1) == 1_000


def test_exit_reasons() -> None:
    assert exit_reason(0, False) == "Completed"
    assert exit_reason(1, False) == "Error"
    assert exit_reason(137, True) == "OOMKilled"
    assert exit_reason(0, True) == "Completed"


def test_container_env_defaults_and_overrides() -> None:
    env = container_env({"A": "1", "PATH": "/x"}, hostname="web", uid=None, tty=True)
    assert env == {"PATH": "/x", "HOSTNAME": "web", "TERM": "xterm", "A": "1", "HOME": "/root"}
    env = container_env({}, hostname="", uid=4242424, tty=False)
    assert env["HOME"] == "/" and "TERM" not in env and env["PATH"].startswith("/usr/local")


def test_resolve_executable_messages(tmp_path: Path) -> None:
    assert resolve_executable("sh", "/nonexistent:/bin:/usr/bin").endswith("/sh")
    with pytest.raises(StartError, match='exec: "nope-kubt": executable file not found in'):
        resolve_executable("nope-kubt", "/bin")
    with pytest.raises(StartError, match="no such file or directory"):
        resolve_executable(str(tmp_path / "missing"), "/bin")
    (tmp_path / "plain").write_text("")
    with pytest.raises(StartError, match="permission denied"):
        resolve_executable(str(tmp_path / "plain"), "/bin")


def test_records_round_trip_and_states(tmp_path: Path) -> None:
    sandbox = SandboxRecord(id="s1", created_at=1.0, config=SandboxConfig(
        name="p", namespace="ns", uid="u", hostname="p", hosts_file="", resolv_conf=""))
    write_json(tmp_path / "s.json", sandbox.to_json())
    loaded = SandboxRecord.from_json(read_json(tmp_path / "s.json") or {})
    assert loaded == sandbox and loaded.status().state == SANDBOX_NOTREADY
    loaded.alive = True
    assert loaded.status().state == SANDBOX_READY

    config = ContainerConfig(name="c", image="i", argv=["sleep", "1"],
                             mounts=[Mount("/a", "/b", readonly=True)])
    container = ContainerRecord(id="c1", sandbox_id="s1", config=config, created_at=2.0)
    write_json(tmp_path / "c.json", container.to_json())
    again = ContainerRecord.from_json(read_json(tmp_path / "c.json") or {})
    assert again.config.mounts == [Mount("/a", "/b", readonly=True)]
    assert again.state == CREATED
    again.apply_shim_status({"pid": 10, "start_time": 5, "started_at": 3.0})
    assert again.state == RUNNING
    again.apply_shim_status({"exit_code": 0, "reason": "Completed", "finished_at": 4.0})
    status = again.status()
    assert status.state == EXITED and status.exit_code == 0 and status.reason == "Completed"
    lost = ContainerRecord(id="c2", sandbox_id="s1", config=config, created_at=2.0, pid=3)
    lost.mark_lost(9.0)
    assert lost.status().exit_code == 255 and lost.state == EXITED


def test_statuses_are_kept_until_a_field_changes() -> None:
    sandbox = SandboxRecord(id="s1", created_at=1.0, holder_pid=42, own_network=True,
                            config=SandboxConfig(name="p", namespace="ns", uid="u",
                                                 hostname="p", hosts_file="",
                                                 resolv_conf=""))
    first = sandbox.status()
    assert sandbox.status() is first and first.netns_path == ""
    sandbox.alive = True
    ready = sandbox.status()
    assert ready is not first and ready.state == SANDBOX_READY
    assert ready.netns_path == "/proc/42/ns/net"
    sandbox.stopped = True
    assert sandbox.status().state == SANDBOX_NOTREADY and sandbox.status().netns_path == ""
    config = ContainerConfig(name="c", image="i", argv=["true"])
    container = ContainerRecord(id="c1", sandbox_id="s1", config=config, created_at=2.0)
    created = container.status()
    container.apply_shim_status({"pid": 10, "start_time": 5})
    assert container.status() is not created and container.status().state == RUNNING


def test_read_json_tolerates_missing_and_torn_files(tmp_path: Path) -> None:
    assert read_json(tmp_path / "absent.json") is None
    (tmp_path / "torn.json").write_text('{"a": ')
    assert read_json(tmp_path / "torn.json") is None


def _records(host_network: bool = False, share: bool = False
             ) -> tuple[ContainerRecord, SandboxRecord]:
    sandbox = SandboxRecord(id="s1", created_at=1.0, holder_pid=42, holder_start=7,
                            config=SandboxConfig(name="p", namespace="ns", uid="u",
                                                 hostname="p", hosts_file="", resolv_conf="",
                                                 host_network=host_network,
                                                 share_process_namespace=share))
    config = ContainerConfig(name="c", image="i", argv=["sleep", "1"], env={"A": "1"},
                             run_as_user=1000, tty=True, stdin=True, stdin_once=True,
                             mounts=[Mount("/data", "/mnt/data", readonly=True)],
                             log_path="/logs/c/0.log")
    record = ContainerRecord(id="c1", sandbox_id="s1", config=config, created_at=2.0,
                             cgroup="u/c1", pid=99, start_time=5)
    return record, sandbox


def test_shim_request_for_an_isolated_pod() -> None:
    record, sandbox = _records()
    settings = requests.Settings(True, "kubi", 100, 3)
    req = requests.shim_request(record, sandbox, settings, sandbox_dir=Path("/st/s1"),
                                status_path=Path("/st/c1/status.json"),
                                cgroup_join=["/cg/procs"])
    assert (req["op"], req["own_pid_ns"], req["stdin_once"]) == ("start", True, True)
    spec = req["process"]
    # Forked by the pod's shim, it is in the pod's namespaces already.
    assert spec["join"] == [] and spec["mount_proc"]
    assert spec["pod_files"]["/etc/resolv.conf"] == "/st/s1/resolv.conf"
    assert spec["mounts"] == [{"host_path": "/data", "container_path": "/mnt/data",
                               "readonly": True, "is_file": False}]
    assert spec["env"]["HOSTNAME"] == "p" and spec["env"]["TERM"] == "xterm"
    assert spec["uid"] == 1000 and spec["cgroup_join"] == ["/cg/procs"]


def test_requests_for_host_network_shared_pid_and_plain_pods() -> None:
    record, sandbox = _records(host_network=True, share=True)
    isolated = requests.Settings(True, "kubi", 100, 3)
    req = requests.shim_request(record, sandbox, isolated, sandbox_dir=Path("/s"),
                                status_path=Path("/c"), cgroup_join=[])
    assert req["process"]["join"] == [] and not req["own_pid_ns"]
    plain = requests.Settings(False, "kubi", 100, 3)
    req = requests.shim_request(record, sandbox, plain, sandbox_dir=Path("/s"),
                                status_path=Path("/c"), cgroup_join=[])
    assert req["process"]["join"] == [] and not req["own_pid_ns"]
    assert "mounts" not in req["process"]
    exec_req = requests.exec_request(record, sandbox, isolated, argv=["ls"], tty=False,
                                     cgroup_join=[])
    assert exec_req["target"] == {"pid": 99, "start_time": 5} and exec_req["pid_ns"]
    assert exec_req["process"]["join"] == ["ipc", "uts", "net", "mnt"]
    assert "TERM" not in exec_req["process"]["env"]
