"""Pod status as the kubelet reports it: phase, conditions, entries, the patch."""

from __future__ import annotations

from typing import Any

from kubi.node import status as st


def spec(*names: str, init: tuple[str, ...] = (), sidecars: tuple[str, ...] = (),
         policy: str = "Always", gates: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "restartPolicy": policy,
        "containers": [{"name": n, "image": f"{n}:1"} for n in names],
    }
    inits = [{"name": n, "image": "busybox"} for n in init]
    inits += [{"name": n, "image": "envoy", "restartPolicy": "Always"} for n in sidecars]
    if inits:
        out["initContainers"] = inits
    if gates:
        out["readinessGates"] = [{"conditionType": g} for g in gates]
    return out


def run(name: str, ready: bool = True, started: bool = True) -> dict[str, Any]:
    return {"name": name, "ready": ready, "started": started,
            "state": st.running("2025-01-01T00:00:00Z")}


def wait(name: str, reason: str = st.CONTAINER_CREATING, last: dict | None = None) -> dict:
    return {"name": name, "ready": False, "started": False, "state": st.waiting(reason),
            "lastState": last or {}}


def done(name: str, code: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": code == 0, "started": False,
            "state": st.terminated(exit_code=code, started_at="t0", finished_at="t1",
                                   container_id="sim://x")}


# ---- phase


def test_waiting_containers_keep_the_pod_pending() -> None:
    assert st.pod_phase(spec("a"), [], [wait("a")]) == st.PENDING


def test_a_running_container_makes_the_pod_running() -> None:
    assert st.pod_phase(spec("a", "b"), [], [run("a"), run("b", ready=False)]) == st.RUNNING


def test_init_containers_not_done_keep_the_pod_pending() -> None:
    s = spec("a", init=("i",))
    assert st.pod_phase(s, [run("i")], [wait("a", st.POD_INITIALIZING)]) == st.PENDING
    assert st.pod_phase(s, [done("i")], [run("a")]) == st.RUNNING


def test_failed_init_container_fails_a_never_pod() -> None:
    s = spec("a", init=("i",), policy="Never")
    assert st.pod_phase(s, [done("i", 1)], [wait("a", st.POD_INITIALIZING)]) == st.FAILED


def test_stopped_containers_follow_the_restart_policy() -> None:
    assert st.pod_phase(spec("a", policy="Never"), [], [done("a")]) == st.SUCCEEDED
    assert st.pod_phase(spec("a", policy="Never"), [], [done("a", 2)]) == st.FAILED
    assert st.pod_phase(spec("a", policy="OnFailure"), [], [done("a")]) == st.SUCCEEDED
    assert st.pod_phase(spec("a", policy="OnFailure"), [], [done("a", 2)]) == st.RUNNING
    assert st.pod_phase(spec("a", policy="Always"), [], [done("a")]) == st.RUNNING


def test_a_terminal_pod_settles_regardless_of_policy() -> None:
    assert st.pod_phase(spec("a"), [], [done("a")], terminal=True) == st.SUCCEEDED
    assert st.pod_phase(spec("a"), [], [done("a", 137)], terminal=True) == st.FAILED


def test_crash_looping_container_counts_as_stopped() -> None:
    looping = wait("a", "CrashLoopBackOff", last=done("a", 1)["state"])
    assert st.pod_phase(spec("a", policy="Always"), [], [looping]) == st.RUNNING


def test_unstarted_sidecar_keeps_the_pod_pending() -> None:
    s = spec("a", sidecars=("proxy",))
    assert st.pod_phase(s, [run("proxy", started=False)], [wait("a")]) == st.PENDING
    assert st.pod_phase(s, [run("proxy")], [run("a")]) == st.RUNNING


# ---- conditions


def test_conditions_of_a_pending_pod_name_the_unready_containers() -> None:
    conds = st.kubelet_conditions(spec("nginx", "side"), phase=st.PENDING, sandbox_ready=False,
                                  init_statuses=[], statuses=[wait("nginx"), wait("side")],
                                  existing=[])
    assert [c["type"] for c in conds] == list(st.KUBELET_CONDITIONS)
    by_type = {c["type"]: c for c in conds}
    assert by_type[st.READY_TO_START_CONTAINERS]["status"] == "False"
    assert by_type[st.INITIALIZED] == {"type": st.INITIALIZED, "status": "True"}
    assert by_type[st.READY] == {"type": st.READY, "status": "False",
                                 "reason": "ContainersNotReady",
                                 "message": "containers with unready status: [nginx side]"}
    assert by_type[st.CONTAINERS_READY]["reason"] == "ContainersNotReady"
    assert by_type[st.POD_SCHEDULED]["status"] == "True"


def test_incomplete_init_containers_are_named() -> None:
    cond = st.initialized_condition(spec("a", init=("one", "two")), [done("one"), run("two", ready=False)],
                                    st.PENDING)
    assert cond["reason"] == "ContainersNotInitialized"
    assert cond["message"] == "containers with incomplete status: [two]"
    unknown = st.initialized_condition(spec("a", init=("one",)), [], st.PENDING)
    assert unknown["message"] == "containers with unknown status: [one]"


def test_a_succeeded_pod_reports_pod_completed() -> None:
    s = spec("a", policy="Never")
    ready = st.containers_ready_condition(s, [], [done("a")], st.SUCCEEDED)
    assert ready == {"type": st.CONTAINERS_READY, "status": "False", "reason": "PodCompleted"}


def test_readiness_gates_hold_ready_back() -> None:
    s = spec("a", gates=("example.com/lb",))
    cr = st.containers_ready_condition(s, [], [run("a")], st.RUNNING)
    missing = st.ready_condition(s, cr, [])
    assert missing["reason"] == "ReadinessGatesNotReady"
    assert missing["message"] == ('corresponding condition of pod readiness gate '
                                  '"example.com/lb" does not exist.')
    false = st.ready_condition(s, cr, [{"type": "example.com/lb", "status": "False"}])
    assert false["message"] == ('the status of pod readiness gate "example.com/lb" is not '
                                '"True", but False')
    assert st.ready_condition(s, cr, [{"type": "example.com/lb", "status": "True"}])["status"] \
        == "True"


def test_stamping_keeps_transition_times_of_unchanged_conditions() -> None:
    old = [{"type": st.POD_SCHEDULED, "status": "True", "lastTransitionTime": "t-sched"},
           {"type": st.READY, "status": "False", "lastTransitionTime": "t-old"},
           {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": "t-dt"}]
    fresh = [{"type": st.READY, "status": "True"}, {"type": st.POD_SCHEDULED, "status": "True"}]
    stamped = st.stamp_conditions(fresh, old, "now")
    assert stamped[0] == {"type": st.READY, "status": "True", "lastTransitionTime": "now"}
    assert stamped[1]["lastTransitionTime"] == "t-sched"
    assert stamped[2]["type"] == "DisruptionTarget"


# ---- entries and writing


def test_container_status_of_a_running_container() -> None:
    container = {"name": "web", "image": "nginx:1.14.2",
                 "resources": {"requests": {"cpu": "100m"}},
                 "volumeMounts": [{"name": "token", "mountPath": "/var/run/x", "readOnly": True},
                                  {"name": "data", "mountPath": "/data"}]}
    entry = st.container_status(container, st.running("t"), container_id="sim://1",
                                image_id="sim://nginx@sha256:0", ready=True, started=True)
    assert entry == {
        "containerID": "sim://1", "image": "nginx:1.14.2", "imageID": "sim://nginx@sha256:0",
        "lastState": {}, "name": "web", "ready": True, "restartCount": 0, "started": True,
        "state": {"running": {"startedAt": "t"}},
        "volumeMounts": [{"mountPath": "/var/run/x", "name": "token", "readOnly": True,
                          "recursiveReadOnly": "Disabled"},
                         {"mountPath": "/data", "name": "data"}],
        "resources": {"requests": {"cpu": "100m"}},
    }


def test_a_waiting_container_has_no_id_or_mounts() -> None:
    entry = st.container_status({"name": "web", "image": "nginx",
                                 "volumeMounts": [{"name": "d", "mountPath": "/d"}]},
                                st.waiting(st.CONTAINER_CREATING))
    assert "containerID" not in entry and "volumeMounts" not in entry
    assert entry["imageID"] == "" and entry["state"] == {"waiting": {
        "reason": "ContainerCreating"}}


def test_terminated_reason_follows_the_exit_code() -> None:
    assert st.terminated(exit_code=0, started_at="a", finished_at="b",
                         container_id="c")["terminated"]["reason"] == "Completed"
    assert st.terminated(exit_code=3, started_at="a", finished_at="b",
                         container_id="c")["terminated"]["reason"] == "Error"


def test_merge_keeps_what_the_node_does_not_own() -> None:
    stored = {"phase": "Pending", "qosClass": "BestEffort", "startTime": "t-start",
              "conditions": [{"type": st.POD_SCHEDULED, "status": "True",
                              "lastTransitionTime": "t-sched"}]}
    fresh = {"phase": "Running", "startTime": "t-later", "hostIP": "192.0.2.1",
             "conditions": [{"type": st.POD_SCHEDULED, "status": "True"}]}
    merged = st.merge_status(stored, fresh, "now")
    assert merged["qosClass"] == "BestEffort"
    assert merged["startTime"] == "t-start"
    assert merged["phase"] == "Running" and merged["hostIP"] == "192.0.2.1"
    assert merged["conditions"][0]["lastTransitionTime"] == "t-sched"


def test_status_patch_carries_the_uid_and_is_none_without_change() -> None:
    pod = {"metadata": {"uid": "u1", "name": "p", "namespace": "ns"},
           "status": {"phase": "Pending", "qosClass": "BestEffort"}}
    patch = st.status_patch(pod, {"phase": "Running", "qosClass": "BestEffort"})
    assert patch == {"metadata": {"uid": "u1"}, "status": {"phase": "Running"}}
    assert st.status_patch(pod, dict(pod["status"])) is None


def test_status_patch_orders_conditions_as_the_kubelet_lists_them() -> None:
    pod = {"metadata": {"uid": "u1"},
           "status": {"conditions": [{"type": st.POD_SCHEDULED, "status": "True"}]}}
    conds = [{"type": t, "status": "True"} for t in st.KUBELET_CONDITIONS]
    patch = st.status_patch(pod, {"conditions": conds})
    assert patch is not None
    assert patch["status"]["$setElementOrder/conditions"] == [
        {"type": t} for t in st.KUBELET_CONDITIONS]
