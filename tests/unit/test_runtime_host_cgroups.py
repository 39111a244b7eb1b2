"""Cgroups on a fake cgroup v1 mount: which processes a group's cleanup signals."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubi.node.runtime.host import cgroups as cgroups_module
from kubi.node.runtime.host.cgroups import Cgroups


def fake_v1(tmp_path: Path, relative: str, procs: str) -> Cgroups:
    for controller in ("memory", "cpu", "pids"):
        group = tmp_path / controller / "kubt" / relative
        group.mkdir(parents=True)
        (group / "cgroup.procs").write_text(procs)
    return Cgroups("kubt", mount=tmp_path)


def test_members_reads_every_hierarchy(tmp_path: Path) -> None:
    groups = fake_v1(tmp_path, "pod/c1", "0\n41\n")
    assert groups.members("pod/c1") == {0, 41}
    assert groups.members("pod/missing") == set()


def test_kill_all_never_signals_pid_zero(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """cgroup.procs lists an exiting process of another PID namespace as 0;
    os.kill(0, SIGKILL) would kill the caller's own process group."""
    groups = fake_v1(tmp_path, "pod/c1", "0\n41\n")
    signalled: list[int] = []

    def fake_kill(pid: int, sig: int) -> None:
        signalled.append(pid)
        if pid == 41:
            for controller in ("memory", "cpu", "pids"):
                (tmp_path / controller / "kubt" / "pod/c1" / "cgroup.procs").write_text("0\n")
    monkeypatch.setattr(cgroups_module.os, "kill", fake_kill)
    groups.kill_all("pod/c1", timeout=0.05)
    assert signalled and set(signalled) == {41}


def test_kill_all_waits_for_an_exiting_member(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    groups = fake_v1(tmp_path, "pod/c1", "0\n")
    polls = []
    real_sleep = cgroups_module.time.sleep

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            for controller in ("memory", "cpu", "pids"):
                (tmp_path / controller / "kubt" / "pod/c1" / "cgroup.procs").write_text("")
        real_sleep(0)
    monkeypatch.setattr(cgroups_module.time, "sleep", fake_sleep)
    monkeypatch.setattr(cgroups_module.os, "kill", lambda pid, sig: pytest.fail("no kill"))
    groups.kill_all("pod/c1", timeout=5.0)
    assert len(polls) == 3


def test_a_process_joins_v1_groups_through_tasks_and_v2_through_procs(tmp_path: Path) -> None:
    v1 = fake_v1(tmp_path / "v1", "pod/c1", "")
    assert v1.join_files("pod/c1") == [
        str(tmp_path / "v1" / controller / "kubt" / "pod/c1" / "tasks")
        for controller in ("memory", "cpu", "pids")]
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.controllers").write_text("cpu memory pids\n")
    v2 = Cgroups("kubt", mount=tmp_path / "v2")
    assert v2.join_files("pod/c1") == [str(tmp_path / "v2" / "kubt" / "pod/c1" / "cgroup.procs")]
