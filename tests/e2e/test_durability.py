"""Crash safety and process life of `kubi up`: kill -9 under load, restart, refusal, SIGTERM.

The crash test runs writer threads that create ConfigMaps as fast as kubi
answers and record every acknowledged name with its resourceVersion, plus a
watcher that records every event it receives. kubi is SIGKILLed in the middle
of the burst and restarted on the same data dir. Then every acknowledged
object must be stored with the resourceVersion it was acknowledged with, new
writes must get higher resourceVersions than anything seen before the crash,
and a watch resumed from the last resourceVersion the watcher saw must deliver
every later object (acknowledged before the kill or created after the restart)
exactly once, in order.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import threading
import time
from typing import Any

import pytest

from tests.e2e.direct import Direct
from tests.e2e.harness import Cluster, free_port

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

NS = "burst"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps"
WRITERS = 4
ACKED_BEFORE_KILL = 400
CREATED_AFTER_RESTART = 25
DEADLINE = 60.0

# What a request in flight meets when its server dies under it.
_CONNECTION_LOST = (OSError, http.client.HTTPException)


class Burst:
    """Threads creating ConfigMaps until the connection fails; they record each 201."""

    def __init__(self, cluster: Cluster, threads: int) -> None:
        self.acked: dict[str, int] = {}
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(
                target=self._write, args=(Direct(cluster, timeout=10), index), daemon=True
            )
            for index in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _write(self, api: Direct, index: int) -> None:
        sequence = 0
        try:
            while True:
                name = f"w{index}-{sequence:06d}"
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name},
                    "data": {"writer": str(index), "sequence": str(sequence)},
                }
                reply = api.post(CM_PATH, body)
                if reply.status != 201:
                    with self._lock:
                        self.unexpected.append(f"{name}: {reply.status} {reply.body[:200]!r}")
                    return
                version = int(reply.json()["metadata"]["resourceVersion"])
                with self._progress:
                    self.acked[name] = version
                    self._progress.notify_all()
                sequence += 1
        except _CONNECTION_LOST:
            return
        finally:
            api.close()

    def wait_for(self, count: int, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        with self._progress:
            while len(self.acked) < count:
                assert not self.unexpected, self.unexpected
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self.acked)} creates acknowledged in {timeout:g}s"
                self._progress.wait(remaining)

    def join(self) -> dict[str, int]:
        for thread in self._threads:
            thread.join(DEADLINE)
            assert not thread.is_alive(), "a writer thread did not stop after the kill"
        assert not self.unexpected, self.unexpected
        return dict(self.acked)


class WatchRecorder:
    """A thread reading one watch stream into (type, name, resourceVersion) events."""

    def __init__(self, cluster: Cluster, resource_version: int) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.problems: list[str] = []
        self._changed = threading.Condition()
        path = f"{CM_PATH}?watch=1&resourceVersion={resource_version}"
        self._api = Direct(cluster, timeout=DEADLINE)
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: str) -> None:
        try:
            for event in self._api.watch(path):
                obj: dict[str, Any] = event["object"]
                with self._changed:
                    if event["type"] == "ERROR":
                        self.problems.append(str(obj))
                    else:
                        meta = obj["metadata"]
                        self.events.append(
                            (event["type"], meta["name"], int(meta["resourceVersion"]))
                        )
                    self._changed.notify_all()
        except _CONNECTION_LOST:
            pass
        except AssertionError as refused:
            self.problems.append(str(refused))
        finally:
            with self._changed:
                self._changed.notify_all()

    @property
    def names(self) -> set[str]:
        with self._changed:
            return {name for _, name, _ in self.events}

    def wait_for_names(self, wanted: set[str], timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not wanted <= {name for _, name, _ in self.events}:
                assert not self.problems, self.problems
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sorted(wanted - {name for _, name, _ in self.events})
                    raise AssertionError(f"watch missed {len(missing)} objects: {missing[:20]}")
                self._changed.wait(remaining)

    def wait_for_count(self, count: int, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                assert not self.problems, self.problems
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"watch saw only {len(self.events)} events in {timeout:g}s"
                self._changed.wait(remaining)

    def join(self) -> list[tuple[str, str, int]]:
        self._thread.join(DEADLINE)
        assert not self._thread.is_alive(), "the watch did not end after the kill"
        return list(self.events)


def list_versions(api: Direct) -> tuple[int, dict[str, int]]:
    listing = api.get(CM_PATH).json()
    stored = {
        item["metadata"]["name"]: int(item["metadata"]["resourceVersion"])
        for item in listing["items"]
    }
    return int(listing["metadata"]["resourceVersion"]), stored


def test_kill_9_during_a_write_burst_loses_no_acknowledged_write(fresh_cluster: Cluster) -> None:
    cluster = fresh_cluster
    cluster.kubectl("create", "namespace", NS)
    api = Direct(cluster)
    start_rv, _ = list_versions(api)
    api.close()

    watcher = WatchRecorder(cluster, start_rv)
    burst = Burst(cluster, WRITERS)
    burst.wait_for(ACKED_BEFORE_KILL)
    # The watcher must be inside the burst too, so the resumed watch has history to replay.
    watcher.wait_for_count(ACKED_BEFORE_KILL // 4)
    cluster.kill(signal.SIGKILL)
    acked = burst.join()
    seen_before = watcher.join()
    assert len(acked) >= ACKED_BEFORE_KILL

    # The stream before the crash was gap-free up to where it stopped.
    last_seen = seen_before[-1][2]
    seen_versions = [version for _, _, version in seen_before]
    assert seen_versions == sorted(set(seen_versions))
    assert {name for name, version in acked.items() if version <= last_seen} <= {
        name for _, name, _ in seen_before
    }

    cluster.restart()
    api = Direct(cluster)
    list_rv, stored = list_versions(api)
    lost = {name: version for name, version in acked.items() if stored.get(name) != version}
    assert not lost, f"{len(lost)} acknowledged creates lost or changed: {sorted(lost)[:20]}"
    # A watcher must never have been told of a write the crash then took back.
    vanished = sorted(name for _, name, version in seen_before if stored.get(name) != version)
    assert not vanished, f"watched before the kill, gone after it: {vanished[:20]}"
    highest_before = max(max(acked.values()), last_seen)
    assert list_rv >= highest_before

    # Resume where the watcher stopped, and also from far back in the burst.
    early = seen_before[len(seen_before) // 4][2]
    resumed = {since: WatchRecorder(cluster, since) for since in (last_seen, early)}
    after_restart: dict[str, int] = {}
    for index in range(CREATED_AFTER_RESTART):
        name = f"after-{index:03d}"
        reply = api.post(
            CM_PATH, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        )
        assert reply.status == 201, reply.body
        after_restart[name] = int(reply.json()["metadata"]["resourceVersion"])
    api.close()
    assert min(after_restart.values()) > highest_before
    assert list(after_restart.values()) == sorted(after_restart.values())

    for since, watcher in resumed.items():
        expected = {name for name, version in acked.items() if version > since} | set(after_restart)
        assert_replayed(watcher, since, expected, stored)


def assert_replayed(
    watcher: WatchRecorder, since: int, expected: set[str], stored: dict[str, int]
) -> None:
    """The watch from `since` delivered each expected creation once, in order, and no more."""
    watcher.wait_for_names(expected)
    replayed = list(watcher.events)
    versions = [version for _, _, version in replayed]
    assert all(version > since for version in versions)
    assert versions == sorted(set(versions)), "events out of order or repeated"
    assert {kind for kind, _, _ in replayed} == {"ADDED"}
    # Unacknowledged creates that reached the disk may show up too; nothing else may.
    extra = {name for _, name, _ in replayed} - expected
    assert all(name in stored for name in extra)
    assert not watcher.problems, watcher.problems


def test_a_second_kubi_on_the_same_data_dir_is_refused(fresh_cluster: Cluster) -> None:
    cluster = fresh_cluster
    second = subprocess.run(
        [
            *cluster.command,
            "up",
            "--data-dir",
            str(cluster.data_dir),
            "--port",
            str(free_port()),
            "--kubeconfig",
            str(cluster.base_dir / "second-kubeconfig.yaml"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert "already running" in output
    assert str(cluster.data_dir) in output
    assert "Traceback" not in output
    # The running server is untouched.
    assert cluster.running
    cluster.kubectl("get", "namespaces")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_kubi_cleanly_and_data_survives(
    fresh_cluster: Cluster, stop_signal: signal.Signals
) -> None:
    cluster = fresh_cluster
    cluster.kubectl("create", "configmap", "kept", "--from-literal=k=v")
    api = Direct(cluster)
    before = api.get("/api/v1/namespaces/default/configmaps/kept").json()
    api.close()

    cluster.kill(stop_signal, timeout=20)
    assert cluster.last_exit_code == 0
    assert "Traceback" not in cluster.log_tail(200)

    # The data-dir lock went with the process: a new start is not refused.
    cluster.start()
    api = Direct(cluster)
    after = api.get("/api/v1/namespaces/default/configmaps/kept").json()
    assert after == before
    created = api.post(
        "/api/v1/namespaces/default/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}},
    )
    api.close()
    assert int(created.json()["metadata"]["resourceVersion"]) > int(
        before["metadata"]["resourceVersion"]
    )
