"""Pod status as the kubelet reports it, built from plain dicts.

A node runtime knows, per container, whether it is waiting, running or
terminated; everything clients read from that (the phase, the five kubelet
conditions with their upstream reasons and messages, the container status
entries) is derived here by pure functions, so the simulated runtime and the
real one report identical shapes. `merge_status` lays a freshly built status
over the stored one (keeping fields and conditions the kubelet does not own,
and each condition's lastTransitionTime while its status holds), and
`status_patch` turns the difference into the strategic merge patch the kubelet
sends to `pods/status`, with the pod's uid as a precondition.
"""

from __future__ import annotations

from typing import Any

from kubi.api import schema
from kubi.api.patch.strategic import create_two_way_strategic_patch

POD_SCHEDULED = "PodScheduled"
READY_TO_START_CONTAINERS = "PodReadyToStartContainers"
INITIALIZED = "Initialized"
CONTAINERS_READY = "ContainersReady"
READY = "Ready"
# The order in which the kubelet lists its conditions.
KUBELET_CONDITIONS = (READY_TO_START_CONTAINERS, INITIALIZED, READY, CONTAINERS_READY,
                      POD_SCHEDULED)

PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
TERMINAL_PHASES = (SUCCEEDED, FAILED)

UNKNOWN_CONTAINER_STATUSES = "UnknownContainerStatuses"
POD_COMPLETED = "PodCompleted"
CONTAINERS_NOT_READY = "ContainersNotReady"
CONTAINERS_NOT_INITIALIZED = "ContainersNotInitialized"
READINESS_GATES_NOT_READY = "ReadinessGatesNotReady"

CONTAINER_CREATING = "ContainerCreating"
POD_INITIALIZING = "PodInitializing"

Status = dict[str, Any]


def go_list(names: list[str]) -> str:
    """A list of names as Go's %s prints a []string: `[a b]`."""
    return "[" + " ".join(names) + "]"


def is_restartable_init(container: dict[str, Any]) -> bool:
    """A sidecar: an init container that keeps running beside the app containers."""
    return container.get("restartPolicy") == "Always"


def exit_reason(exit_code: int) -> str:
    return "Completed" if exit_code == 0 else "Error"


# ---- container status entries ------------------------------------------------------


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def running(started_at: str) -> dict[str, Any]:
    return {"running": {"startedAt": started_at}}


def terminated(*, exit_code: int, started_at: str, finished_at: str, container_id: str,
               reason: str | None = None) -> dict[str, Any]:
    return {"terminated": {
        "containerID": container_id,
        "exitCode": exit_code,
        "finishedAt": finished_at,
        "reason": reason or exit_reason(exit_code),
        "startedAt": started_at,
    }}


def volume_mount_statuses(container: dict[str, Any]) -> list[dict[str, Any]]:
    """What the kubelet reports of a created container's mounts."""
    out = []
    for mount in container.get("volumeMounts") or []:
        entry: dict[str, Any] = {"mountPath": mount.get("mountPath", ""),
                                 "name": mount.get("name", "")}
        if mount.get("readOnly"):
            entry["readOnly"] = True
            entry["recursiveReadOnly"] = ("Enabled" if mount.get("recursiveReadOnly") == "Enabled"
                                          else "Disabled")
        out.append(entry)
    return out


def container_status(container: dict[str, Any], state: dict[str, Any], *,
                     container_id: str = "", image_id: str = "", ready: bool = False,
                     started: bool = False, restart_count: int = 0,
                     last_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of containerStatuses / initContainerStatuses.

    A container that exists in the runtime (it has an id) also reports its
    mounts, and while running the resources it was given."""
    status: dict[str, Any] = {
        "image": container.get("image", ""),
        "imageID": image_id,
        "lastState": last_state or {},
        "name": container.get("name", ""),
        "ready": ready,
        "restartCount": restart_count,
        "started": started,
        "state": state,
    }
    if container_id:
        status["containerID"] = container_id
        mounts = volume_mount_statuses(container)
        if mounts:
            status["volumeMounts"] = mounts
    resources = container.get("resources") or {}
    if "running" in state and (resources.get("requests") or resources.get("limits")):
        status["resources"] = {k: dict(resources[k]) for k in ("limits", "requests")
                               if resources.get(k)}
    return status


def _by_name(statuses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s.get("name", ""): s for s in statuses}


# ---- phase ---------------------------------------------------------------------------


def pod_phase(spec: dict[str, Any], init_statuses: list[dict[str, Any]],
              statuses: list[dict[str, Any]], *, terminal: bool = False,
              initialized_before: bool = False) -> str:
    """The phase the kubelet derives from container states.

    `terminal` says the pod will not run again (it is being deleted, or its
    containers will not be restarted), so stopped containers settle the phase
    regardless of the restart policy."""
    inits = _by_name(init_statuses)
    mains = _by_name(statuses)
    policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = pending_sidecars = 0
    unknown = running_ = waiting_ = stopped = succeeded = 0
    for c in spec.get("initContainers") or []:
        st = inits.get(c.get("name", ""))
        state = (st or {}).get("state") or {}
        last = ((st or {}).get("lastState") or {}).get("terminated")
        if is_restartable_init(c):
            if st is None:
                unknown += 1
            elif "running" in state:
                running_ += 1
                if not st.get("started"):
                    pending_sidecars += 1
            elif "waiting" in state and last is None:
                pending_sidecars += 1
                waiting_ += 1
            elif "terminated" not in state and "waiting" not in state:
                pending_sidecars += 1
                unknown += 1
            continue
        if st is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif "waiting" in state:
            if last is None:
                pending_init += 1
            elif last.get("exitCode", 0) != 0:
                failed_init += 1
        else:
            pending_init += 1
    for c in spec.get("containers") or []:
        st = mains.get(c.get("name", ""))
        if st is None:
            unknown += 1
            continue
        state = st.get("state") or {}
        if "running" in state:
            running_ += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif "waiting" in state:
            if (st.get("lastState") or {}).get("terminated") is not None:
                stopped += 1
            else:
                waiting_ += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return FAILED
    if pending_init or (pending_sidecars and not initialized_before) or waiting_:
        return PENDING
    if running_ and not unknown:
        return RUNNING
    if not running_ and stopped and not unknown:
        if terminal:
            return SUCCEEDED if stopped == succeeded else FAILED
        if policy == "Always":
            return RUNNING
        if stopped == succeeded:
            return SUCCEEDED
        return FAILED if policy == "Never" else RUNNING
    return PENDING


# ---- conditions ------------------------------------------------------------------------


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _not_ready_message(unknown: list[str], unready: list[str], word: str) -> str:
    parts = []
    if unknown:
        parts.append(f"containers with unknown status: {go_list(unknown)}")
    if unready:
        parts.append(f"containers with {word} status: {go_list(unready)}")
    return ", ".join(parts)


def containers_ready_condition(spec: dict[str, Any], init_statuses: list[dict[str, Any]],
                               statuses: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    inits, mains = _by_name(init_statuses), _by_name(statuses)
    unknown: list[str] = []
    unready: list[str] = []
    sidecars = [c for c in spec.get("initContainers") or [] if is_restartable_init(c)]
    for c, known in [(c, inits) for c in sidecars] + [(c, mains) for c in
                                                      spec.get("containers") or []]:
        st = known.get(c.get("name", ""))
        if st is None:
            unknown.append(c.get("name", ""))
        elif not st.get("ready"):
            unready.append(c.get("name", ""))
    if phase == SUCCEEDED and not unknown:
        return _condition(CONTAINERS_READY, False, POD_COMPLETED)
    message = _not_ready_message(unknown, unready, "unready")
    if message:
        return _condition(CONTAINERS_READY, False, CONTAINERS_NOT_READY, message)
    return _condition(CONTAINERS_READY, True)


def initialized_condition(spec: dict[str, Any], init_statuses: list[dict[str, Any]],
                          phase: str) -> dict[str, Any]:
    inits = _by_name(init_statuses)
    unknown: list[str] = []
    incomplete: list[str] = []
    for c in spec.get("initContainers") or []:
        name = c.get("name", "")
        st = inits.get(name)
        if st is None:
            unknown.append(name)
        elif is_restartable_init(c):
            if not st.get("started"):
                incomplete.append(name)
        elif not st.get("ready"):
            incomplete.append(name)
    if phase == SUCCEEDED and not unknown:
        return _condition(INITIALIZED, True, POD_COMPLETED)
    message = _not_ready_message(unknown, incomplete, "incomplete")
    if message:
        return _condition(INITIALIZED, False, CONTAINERS_NOT_INITIALIZED, message)
    return _condition(INITIALIZED, True)


def ready_condition(spec: dict[str, Any], containers_ready: dict[str, Any],
                    conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """Ready follows ContainersReady, then every readiness gate must be True."""
    if containers_ready["status"] != "True":
        return {**containers_ready, "type": READY}
    present = {c.get("type"): c.get("status") for c in conditions}
    problems = []
    for gate in spec.get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        if kind not in present:
            problems.append(f'corresponding condition of pod readiness gate "{kind}" '
                            "does not exist.")
        elif present[kind] != "True":
            problems.append(f'the status of pod readiness gate "{kind}" is not "True", '
                            f"but {present[kind]}")
    if problems:
        return _condition(READY, False, READINESS_GATES_NOT_READY, ", ".join(problems))
    return _condition(READY, True)


def kubelet_conditions(spec: dict[str, Any], *, phase: str, sandbox_ready: bool,
                       init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]],
                       existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The five kubelet conditions, in its order, without timestamps."""
    containers_ready = containers_ready_condition(spec, init_statuses, statuses, phase)
    return [
        _condition(READY_TO_START_CONTAINERS, sandbox_ready),
        initialized_condition(spec, init_statuses, phase),
        ready_condition(spec, containers_ready, existing),
        containers_ready,
        _condition(POD_SCHEDULED, True),
    ]


def stamp_conditions(fresh: list[dict[str, Any]], old: list[dict[str, Any]],
                     now: str) -> list[dict[str, Any]]:
    """`fresh` with transition times, followed by the old conditions it does not cover.

    A condition whose status did not change keeps its lastTransitionTime; the
    conditions others own (DisruptionTarget, readiness gates) stay as they are."""
    previous = {c.get("type"): c for c in old}
    out = []
    for cond in fresh:
        before = previous.get(cond["type"])
        same = before is not None and before.get("status") == cond["status"]
        stamped = {"type": cond["type"], "status": cond["status"]}
        stamped["lastTransitionTime"] = (before.get("lastTransitionTime") if same and before
                                         else None) or now
        for key in ("reason", "message"):
            if cond.get(key):
                stamped[key] = cond[key]
        if before is not None and before.get("lastProbeTime"):
            stamped["lastProbeTime"] = before["lastProbeTime"]
        out.append(stamped)
    covered = {c["type"] for c in fresh}
    out.extend(c for c in old if c.get("type") not in covered)
    return out


# ---- writing -----------------------------------------------------------------------------

# The fields of PodStatus a node always reports; anything else (qosClass,
# nominatedNodeName, reason, ...) is left as stored unless the fresh status has it.
NODE_OWNED_FIELDS = ("phase", "conditions", "hostIP", "hostIPs", "podIP", "podIPs",
                     "startTime", "initContainerStatuses", "containerStatuses")


def merge_status(stored: Status, fresh: Status, now: str) -> Status:
    """The status to store: `fresh` over `stored`, conditions stamped and merged."""
    merged = {k: v for k, v in stored.items() if k not in NODE_OWNED_FIELDS}
    merged.update({k: v for k, v in fresh.items() if k != "conditions"})
    if fresh.get("conditions") or stored.get("conditions"):
        merged["conditions"] = stamp_conditions(fresh.get("conditions") or [],
                                                stored.get("conditions") or [], now)
    # startTime never moves once set, as upstream's status manager keeps it.
    if stored.get("startTime"):
        merged["startTime"] = stored["startTime"]
    return merged


_POD_SCHEMA: list[schema.Node | None] = []


def _pod_schema() -> schema.Node | None:
    if not _POD_SCHEMA:
        _POD_SCHEMA.append(schema.for_kind("", "v1", "Pod"))
    return _POD_SCHEMA[0]


def status_patch(pod: dict[str, Any], status: Status) -> dict[str, Any] | None:
    """The strategic merge patch from `pod`'s stored status to `status`, or None
    when there is nothing to change. The uid makes the server refuse the patch
    if the name now belongs to another pod."""
    stored = pod.get("status") or {}
    if status == stored:
        # The common case once a pod has settled: nodes report the same status
        # on every sync, and comparing is far cheaper than diffing.
        return None
    patch = create_two_way_strategic_patch({"status": stored},
                                           {"status": status}, _pod_schema())
    if not patch:
        return None
    patch["metadata"] = {"uid": pod["metadata"]["uid"]}
    return patch
