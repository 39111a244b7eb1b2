"""CrashLoopBackOff arithmetic and Go's duration spelling."""

from __future__ import annotations

import pytest

from kubi.node.agent.backoff import Backoff, go_duration, stable_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_exit_restarts_at_once_then_doubles_to_five_minutes() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock)
    key = "p_ns_uid_c_hash"
    waits = []
    for _ in range(8):
        exited = clock.now
        if backoff.in_backoff_since(key, exited):
            clock.now += backoff.remaining(key, exited)
        waits.append(clock.now - exited)
        backoff.next(key, exited)
        clock.now += 1  # the container runs one second and exits again
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    assert backoff.get(key) == 300


def test_back_off_resets_after_ten_minutes_of_running() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock)
    for _ in range(4):
        backoff.next("k", clock.now)
    assert backoff.get("k") == 80
    clock.now += 601
    assert not backoff.in_backoff_since("k", clock.now)
    backoff.next("k", clock.now)
    assert backoff.get("k") == 10


def test_remaining_counts_from_the_exit() -> None:
    clock = Clock()
    backoff = Backoff(clock=clock)
    backoff.next("k", clock.now)
    clock.now += 4
    assert backoff.remaining("k", clock.now - 4) == pytest.approx(6)
    assert backoff.remaining("other", clock.now) == 0


def test_forget_prefix_drops_one_pods_entries() -> None:
    backoff = Backoff()
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    backoff.next(stable_key(pod, "a", "h"), 0)
    backoff.next("q_ns_u2_a_h", 0)
    backoff.forget_prefix("p_ns_u_")
    assert backoff.get(stable_key(pod, "a", "h")) == 0
    assert backoff.get("q_ns_u2_a_h") == 10


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (10, "10s"), (20, "20s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"),
    (300, "5m0s"), (3600, "1h0m0s"), (1.5, "1.5s"), (0.25, "250ms"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
