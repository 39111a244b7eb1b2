"""What the node agent's acceptance tests look at on the machine itself.

The agent runs pods as processes of this machine, so besides kubectl the
tests read /proc, /sys and `ip`: which process is the agent (a child of the
`kubi up` PID), which processes belong to a container (its cgroup path ends
in the container ID), and what of a cluster is still on the machine after it
stopped (`Footprint`). `drive` runs an interactive kubectl in a pseudo
terminal through pexpect, as a user at a terminal would. The manifest
builders at the end give the seed's workloads host commands, since the host
runtime runs commands from the node's own filesystem and only records images.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Cluster
from tests.tools.background import WaitTimeout

JSON = dict[str, Any]
CGROUP_MOUNT = Path("/sys/fs/cgroup")
CLUSTER_DNS_IP = "10.43.0.10"
POD_IP = re.compile(r"10\.42\.\d{1,3}\.\d{1,3}")


# ---- waiting and reading the API


def wait_for(probe: Callable[[], Any], timeout: float, *, what: str) -> Any:
    """Poll `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"no {what} within {timeout:g}s")
        time.sleep(0.2)


def holds_for(probe: Callable[[], bool], seconds: float, *, what: str) -> None:
    """Check `probe` repeatedly over `seconds`: it must hold every time."""
    deadline = time.monotonic() + seconds
    while True:
        assert probe(), f"no longer true: {what}"
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def pod_or_none(cluster: Cluster, name: str, namespace: str = "default") -> JSON | None:
    result = cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(f"kubectl get pod {name}: {result.stderr}")
    found: JSON = json.loads(result.stdout)
    return found


def condition(obj: JSON, kind: str) -> JSON | None:
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            found: JSON = entry
            return found
    return None


def is_ready(obj: JSON) -> bool:
    entry = condition(obj, "Ready")
    return entry is not None and entry.get("status") == "True"


def wait_ready(cluster: Cluster, name: str, namespace: str = "default",
               timeout: float = 60.0) -> JSON:
    """The pod once it is Running and Ready."""
    def ready() -> JSON | None:
        pod = pod_or_none(cluster, name, namespace)
        running = pod is not None and pod["status"].get("phase") == "Running"
        return pod if running and pod is not None and is_ready(pod) else None

    found: JSON = wait_for(ready, timeout, what=f"pod {namespace}/{name} Running and Ready")
    return found


def container_status(pod: JSON, index: int = 0) -> JSON:
    statuses: list[JSON] = pod["status"].get("containerStatuses") or []
    return statuses[index] if len(statuses) > index else {}


def events_of(cluster: Cluster, name: str, namespace: str = "default") -> list[JSON]:
    listed = get_json(cluster, "events", "-n", namespace,
                      "--field-selector", f"involvedObject.name={name}")
    items: list[JSON] = listed["items"]
    return items


def local_node_name(cluster: Cluster) -> str:
    """The node `kubi up` runs for this machine: the one whose runtime is kubi's host runtime."""
    def ready_host_node() -> str:
        for node in get_json(cluster, "nodes")["items"]:
            info = node["status"].get("nodeInfo") or {}
            if info.get("containerRuntimeVersion", "").startswith("kubi-host") and is_ready(node):
                return str(node["metadata"]["name"])
        return ""

    try:
        found: str = wait_for(ready_host_node, 60, what="a Ready node for this machine")
    except WaitTimeout as exc:
        agent_log = cluster.data_dir / "agent.log"
        tail = agent_log.read_text(errors="replace")[-3000:] if agent_log.exists() else ""
        raise WaitTimeout(f"{exc}\n--- {agent_log} (end) ---\n{tail}") from None
    return found


AGENT_PORT = 10250


@contextlib.contextmanager
def local_node_cluster(base: Path, stop_timeout: float) -> Iterator[tuple[Cluster, Footprint]]:
    """`kubi up` as root in `base`, this machine its node, with the footprint to
    check after it stops; fails at once when another node agent holds its port."""
    if not port_free(AGENT_PORT):
        pytest.fail(f"port {AGENT_PORT} is taken: another `kubi up` as root (or a kubelet) "
                    "runs a node agent on this machine, and only one can", pytrace=False)
    footprint = Footprint.before_start(base)
    cluster = Cluster(base)
    try:
        cluster.start()
        local_node_name(cluster)
        yield cluster, footprint
    finally:
        cluster.stop(stop_timeout)
        cluster.close()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET without any proxy from the environment: pod IPs are on the local bridge."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


# ---- processes


def children(pid: int) -> list[int]:
    """The direct children of `pid`, from every one of its threads."""
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in path.read_text().split()]
        except OSError:
            continue
    return found


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def agent_pid(cluster: Cluster) -> int | None:
    """The `kubi agent` child of this cluster's `kubi up` process."""
    if cluster.pid is None:
        return None
    for child in children(cluster.pid):
        argv = cmdline(child)
        if "agent" in argv and "kubi" in argv:
            return child
    return None


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def pids_in_cgroup(fragment: str) -> list[int]:
    """Processes whose cgroup path names `fragment` (a container ID or a pod UID)."""
    found = []
    for pid in all_pids():
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if fragment in text and alive(pid):
            found.append(pid)
    return found


def container_id(pod: JSON, index: int = 0) -> str:
    """A container's ID without the runtime's scheme, as its cgroup path names it."""
    bare = container_status(pod, index).get("containerID", "").split("://", 1)[-1]
    assert bare, f"no containerID in {pod['metadata']['name']}'s status"
    return bare


def parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[1])


def container_main_pid(pod: JSON, index: int = 0) -> int:
    """The container's first process: the one in its cgroup whose parent is not."""
    members = pids_in_cgroup(container_id(pod, index))
    mains = [pid for pid in members if parent(pid) not in members]
    assert len(mains) == 1, f"container processes {members}, first ones {mains}"
    return mains[0]


def processes_referencing(directory: Path) -> list[str]:
    """Live processes whose command line, working directory or executable is under `directory`."""
    prefix = str(directory)
    found = []
    for pid in all_pids():
        links = []
        for link in ("cwd", "exe"):
            try:
                links.append(str(Path(f"/proc/{pid}/{link}").readlink()))
            except OSError:
                continue
        argv = cmdline(pid)
        if alive(pid) and any(prefix in text for text in [*argv, *links]):
            found.append(f"{pid}: {' '.join(argv)}")
    return found


# ---- the machine's network and cgroups


def link_names() -> set[str]:
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                            check=True).stdout
    return {line.split(":", 2)[1].strip().split("@")[0] for line in listed.splitlines()}


def loopback_has(address: str) -> bool:
    listed = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"],
                            capture_output=True, text=True, check=True).stdout
    return f" {address}/" in listed


def mounts_under(directory: Path) -> list[str]:
    prefix = str(directory)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


def cgroup_roots() -> list[Path]:
    """Every `kubi` cgroup directory: one per v1 hierarchy, or the v2 one."""
    return [path for path in CGROUP_MOUNT.glob("*/kubi") if path.is_dir()] + (
        [CGROUP_MOUNT / "kubi"] if (CGROUP_MOUNT / "kubi").is_dir() else [])


@dataclass
class Footprint:
    """What one cluster put on the machine, to compare before start and after stop.

    The bridge, the cgroup root and the DNS address are shared names: another
    kubi on the machine may hold them, so they count as ours only when absent
    before we started. Pod veths, pod cgroups and mounts are ours by name.
    """

    base_dir: Path
    bridge_before: bool = False
    cgroup_root_before: bool = False
    dns_address_before: bool = False
    sandbox_ids: set[str] = field(default_factory=set)
    pod_uids: set[str] = field(default_factory=set)

    @classmethod
    def before_start(cls, base_dir: Path) -> Footprint:
        return cls(base_dir, bridge_before="kubi0" in link_names(),
                   cgroup_root_before=bool(cgroup_roots()),
                   dns_address_before=loopback_has(CLUSTER_DNS_IP))

    def note_pods(self, cluster: Cluster) -> None:
        """Remember the sandboxes and pods the cluster's runtime holds right now."""
        runtime = cluster.data_dir / "agent" / "runtime" / "sandboxes"
        self.sandbox_ids |= {p.name for p in runtime.iterdir()} if runtime.is_dir() else set()
        for pod in get_json(cluster, "pods", "-A")["items"]:
            self.pod_uids.add(pod["metadata"]["uid"])

    def leftovers(self) -> list[str]:
        """Everything of ours still on the machine, described; empty when clean."""
        found = [f"process {p}" for p in processes_referencing(self.base_dir)]
        found += [f"mount {m}" for m in mounts_under(self.base_dir)]
        links = link_names()
        found += [f"veth {v}" for v in (f"kv{s[:12]}" for s in self.sandbox_ids) if v in links]
        if "kubi0" in links and not self.bridge_before:
            found.append("bridge kubi0")
        for uid in self.pod_uids:
            found += [f"pod process {p}: {' '.join(cmdline(p))}" for p in pids_in_cgroup(uid)]
            found += [f"cgroup {root / uid}" for root in cgroup_roots() if (root / uid).exists()]
        if not self.cgroup_root_before:
            found += [f"cgroup {root}" for root in cgroup_roots()]
        if loopback_has(CLUSTER_DNS_IP) and not self.dns_address_before:
            found.append(f"address {CLUSTER_DNS_IP} on lo")
        return found


# ---- a terminal


@dataclass
class Session:
    output: str
    exit_code: int | None


def drive(argv: Sequence[str], env: dict[str, str],
          steps: Sequence[tuple[str, str]] = (), timeout: float = 30.0) -> Session:
    """Run `argv` in a pseudo terminal; for each (pattern, line) wait for the
    pattern in its output and type the line; then read until it exits. The
    session keeps the whole transcript of the terminal."""
    import io

    import pexpect

    transcript = io.StringIO()
    child = pexpect.spawn(argv[0], list(argv[1:]), env=env, encoding="utf-8",
                          timeout=timeout, dimensions=(24, 120))
    child.logfile_read = transcript
    try:
        for pattern, line in steps:
            child.expect(pattern)
            child.sendline(line)
        child.expect(pexpect.EOF)
        child.close()
        return Session(output=transcript.getvalue(), exit_code=child.exitstatus)
    except pexpect.TIMEOUT as exc:
        raise WaitTimeout(f"`{' '.join(argv)}` stalled; its terminal showed:\n"
                          f"{transcript.getvalue()!r}") from exc
    finally:
        if child.isalive():
            child.terminate(force=True)


# ---- manifests


def host_pod(name: str, command: list[str], *, namespace: str = "default",
             grace: int | None = 2, **container: Any) -> JSON:
    """A one-container pod running `command` on the node."""
    spec: JSON = {"containers": [{"name": "c", "image": "busybox", "command": command,
                                  **container}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def with_host_command(obj: JSON, command: list[str], *, grace: int | None = 2,
                      **container: Any) -> JSON:
    """A seed workload whose pod template runs `command` (the image is kept)."""
    spec = obj["spec"]["template"]["spec"]
    spec["containers"][0]["command"] = command
    spec["containers"][0].update(container)
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return obj


def flag_probe(flag_dir: Path, period: int = 1) -> JSON:
    """A readiness probe that passes once `<flag_dir>/<pod hostname>` exists
    (pods see the node's filesystem)."""
    return {"exec": {"command": ["sh", "-c", f'test -f "{flag_dir}/$(hostname)"']},
            "periodSeconds": period}
