"""Acceptance of the node agent: pods really run on this machine, as a user sees it.

`kubi up` as root runs this machine as a node: the agent, the host runtime
(namespaces, a veth on the bridge kubi0, an address from 10.42.0.0/16) and
cluster DNS on 10.43.0.10. The real kubectl drives it: `kubectl run`, exec
and attach in a pseudo terminal, logs, deletion with grace periods, the
seed's StatefulSet and Deployment with host commands, restart policy and
probes. The tests also look at the machine: the pod answers HTTP on its IP
from the node, a deleted pod's processes are gone, a SIGKILLed agent is
restarted by `kubi up` and adopts its pods, and a stopped cluster leaves no
process, mount, veth, netns or cgroup. One cluster serves the module (two
cannot run as root side by side: they would share the agent's port, the
bridge and 10.43.0.10); its agent is killed near the end, and the last test
stops it.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.acceptance_support import available, counted, replay, watch_rows
from tests.e2e.deployment_support import DEPLOY_FILE, DEPLOY_V2_FILE, DEPLOYMENT, seed_object
from tests.e2e.harness import Cluster
from tests.e2e.node_agent_support import (
    CLUSTER_DNS_IP,
    JSON,
    POD_IP,
    Footprint,
    agent_pid,
    alive,
    container_id,
    container_main_pid,
    container_status,
    drive,
    events_of,
    flag_probe,
    get_json,
    holds_for,
    host_pod,
    http_get,
    is_ready,
    link_names,
    local_node_cluster,
    local_node_name,
    pids_in_cgroup,
    pod_or_none,
    wait_for,
    wait_ready,
    with_host_command,
)
from tests.e2e.statefulset_support import NGINX_SVC, WEB_STS, first_index

if os.geteuid() != 0:
    pytest.skip("the node agent's host runtime needs root: namespaces, veths, mounts and "
                "cgroups (run the e2e suite as root to cover it)", allow_module_level=True)

pytestmark = pytest.mark.e2e

# Pods here use small grace periods; a stopping cluster waits for them.
STOP_TIMEOUT = 60.0
HTTP_SERVER = ["python3", "-m", "http.server"]
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Leaves as soon as it gets SIGTERM.
POLITE = ["sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.2; done"]


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Footprint]]:
    with local_node_cluster(tmp_path_factory.mktemp("kubi-node"), STOP_TIMEOUT) as started:
        yield started


@pytest.fixture(scope="module")
def node(node_cluster: tuple[Cluster, Footprint]) -> Cluster:
    return node_cluster[0]


def apply(cluster: Cluster, obj: JSON) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))


def namespace(cluster: Cluster, name: str) -> str:
    cluster.kubectl("create", "namespace", name)
    return name


# ---- kubectl run web


@pytest.fixture(scope="module")
def web(node: Cluster) -> Iterator[JSON]:
    created = node.kubectl("run", "web", "--image=python:3", "--command", "--",
                           *HTTP_SERVER, "8080")
    assert created.stdout == "pod/web created\n"
    yield wait_ready(node, "web")
    if node.running:
        node.kubectl("delete", "pod", "web", "--grace-period=1", "--ignore-not-found")


def test_web_runs_with_a_pod_ip_from_the_node_cidr(node: Cluster, web: JSON) -> None:
    assert web["status"]["phase"] == "Running"
    assert POD_IP.fullmatch(web["status"]["podIP"]), web["status"]
    assert web["spec"]["nodeName"] == local_node_name(node)
    status = container_status(web)
    assert status["ready"] and status["restartCount"] == 0 and "running" in status["state"]


def test_exec_hostname_prints_the_pod_name(node: Cluster, web: JSON) -> None:
    assert node.kubectl("exec", "web", "--", "hostname").stdout == "web\n"


def test_http_get_from_the_node_reaches_the_pod_ip(web: JSON) -> None:
    code, body = http_get(f"http://{web['status']['podIP']}:8080/")
    assert code == 200 and "Directory listing" in body


def test_logs_follow_streams_the_request_log(node: Cluster, web: JSON) -> None:
    follow = node.spawn("logs", "-f", "web")
    try:
        # The first request's line shows the stream is open; the second one's
        # can then only arrive live.
        for _ in range(2):
            path = f"/followed-{uuid.uuid4().hex[:8]}"
            assert http_get(f"http://{web['status']['podIP']}:8080{path}")[0] == 404
            follow.wait_for_line(rf'"GET {path} HTTP/1.1" 404', timeout=15)
        assert follow.returncode is None, "kubectl logs -f ended while the pod runs"
    finally:
        follow.stop()


def test_exec_it_sh_is_interactive_and_returns_the_exit_code(node: Cluster, web: JSON) -> None:
    session = drive(node.kubectl_argv("exec", "-it", "web", "--", "sh"), node.client_env(),
                    [(r"[#$] $", "echo hi; exit 7")])
    assert "\r\nhi\r\n" in session.output, session.output
    assert session.exit_code == 7, session.output


def test_cp_copies_a_file_into_the_pod_and_back(node: Cluster, web: JSON,
                                               tmp_path: Path) -> None:
    # Containers see the node's filesystem: the pod's path is a fresh one under /tmp.
    inside = f"/tmp/kubi-cp-{uuid.uuid4().hex[:8]}"
    sent, received = tmp_path / "sent.txt", tmp_path / "received.txt"
    sent.write_text("copied both ways\n")
    try:
        node.kubectl("exec", "web", "--", "mkdir", inside)
        node.kubectl("cp", str(sent), f"web:{inside}/file.txt")
        assert node.kubectl("exec", "web", "--", "cat", f"{inside}/file.txt").stdout == \
            "copied both ways\n"
        node.kubectl("cp", f"web:{inside}/file.txt", str(received))
        assert received.read_text() == "copied both ways\n"
    finally:
        node.kubectl("exec", "web", "--", "rm", "-rf", inside, check=False)


def test_the_service_account_token_is_mounted_and_authenticates(
        node: Cluster, web: JSON, tmp_path: Path) -> None:
    spec = web["spec"]
    assert spec["serviceAccountName"] == "default"
    [volume] = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_DIR} in \
        spec["containers"][0]["volumeMounts"]
    listing = node.kubectl("exec", "web", "--", "ls", TOKEN_DIR).stdout.split()
    assert listing == ["ca.crt", "namespace", "token"]
    assert node.kubectl("exec", "web", "--", "cat", f"{TOKEN_DIR}/namespace").stdout == "default"
    ca = node.kubectl("exec", "web", "--", "cat", f"{TOKEN_DIR}/ca.crt").stdout
    assert ca == (node.data_dir / "pki" / "ca.crt").read_text()
    # The seed's `df -h` inside a pod lists this tmpfs.
    df = node.kubectl("exec", "web", "--", "df", "-h").stdout
    assert re.search(r"^tmpfs .* /run/secrets/kubernetes\.io/serviceaccount$", df,
                     re.MULTILINE), df

    token = node.kubectl("exec", "web", "--", "cat", f"{TOKEN_DIR}/token").stdout
    as_pod = tmp_path / "pod.kubeconfig"
    as_pod.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "pod",
        "clusters": [{"name": "kubi", "cluster": {
            "server": f"https://127.0.0.1:{node.port}",
            "certificate-authority": str(node.data_dir / "pki" / "ca.crt")}}],
        "users": [{"name": "web", "user": {"token": token}}],
        "contexts": [{"name": "pod", "context": {"cluster": "kubi", "user": "web"}}]}))
    listed = node.kubectl(f"--kubeconfig={as_pod}", "get", "pod", "web", "-o", "name")
    assert listed.stdout == "pod/web\n"
    as_pod.write_text(as_pod.read_text().replace(token, token[:-4] + "AAAA"))
    refused = node.kubectl(f"--kubeconfig={as_pod}", "get", "pod", "web", check=False)
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr, refused.stderr


def test_delete_stops_the_process_within_its_grace_period(node: Cluster) -> None:
    ns = namespace(node, "grace")
    node.kubectl("run", "web", "-n", ns, "--image=python:3", "--command", "--",
                 *HTTP_SERVER, "8080")
    # A process that handles SIGTERM goes at once; the grace period bounds the others.
    apply(node, host_pod("polite", POLITE, namespace=ns, grace=30))
    web, polite = wait_ready(node, "web", ns), wait_ready(node, "polite", ns)
    web_pid, polite_pid = container_main_pid(web), container_main_pid(polite)

    # python3 as its pod's PID 1 ignores SIGTERM, as in any container: SIGKILL after 3 s.
    began = time.monotonic()
    node.kubectl("delete", "pod", "web", "-n", ns, "--grace-period=3", timeout=30)
    elapsed = time.monotonic() - began
    assert elapsed < 3 + 3, f"deletion took {elapsed:.1f}s with a 3 s grace period"
    assert not alive(web_pid) and not pids_in_cgroup(container_id(web))
    assert any(e["reason"] == "Killing" for e in events_of(node, "web", ns))

    began = time.monotonic()
    node.kubectl("delete", "pod", "polite", "-n", ns, timeout=40)
    elapsed = time.monotonic() - began
    assert elapsed < 5, f"a SIGTERM-handling pod took {elapsed:.1f}s to go"
    assert not alive(polite_pid) and not pids_in_cgroup(container_id(polite))


# ---- kubectl run -it --rm


def test_run_it_rm_prints_the_hostname_returns_the_exit_code_and_leaves_no_pod(
        node: Cluster) -> None:
    session = drive(node.kubectl_argv("run", "-it", "--rm", "--image", "busybox:1.28", "t",
                                      "--restart=Never", "--command", "--",
                                      "sh", "-c", "hostname; exit 3"), node.client_env())
    assert "\r\nt\r\n" in session.output, session.output
    assert session.exit_code == 3, session.output
    assert pod_or_none(node, "t") is None


def test_run_it_rm_attaches_an_interactive_shell(node: Cluster) -> None:
    session = drive(node.kubectl_argv("run", "-it", "--rm", "--image", "busybox:1.28", "t2",
                                      "--restart=Never", "--command", "--", "sh"),
                    node.client_env(),
                    [("try pressing enter", ""), (r"[#$] $", "hostname; exit 3")])
    assert "\r\nt2\r\n" in session.output, session.output
    assert "falling back to streaming logs" not in session.output, session.output
    assert session.exit_code == 3, session.output
    assert pod_or_none(node, "t2") is None


# ---- the seed's StatefulSet with a host command, and cluster DNS


def test_statefulset_pods_have_their_hostname_hosts_entry_and_dns_name(
        node_cluster: tuple[Cluster, Footprint]) -> None:
    node, footprint = node_cluster
    ns = namespace(node, "demo")
    node.kubectl("apply", "-f", str(NGINX_SVC))
    pods = node.spawn("get", "pod", "-n", ns, "-w", "--output-watch-events")
    sts = with_host_command(yaml.safe_load(WEB_STS.read_text()), [*HTTP_SERVER, "80"])
    apply(node, sts)
    pods.wait_for_line(r"^\w+\s+web-demo-1\s+1/1\s+Running", timeout=60)
    # web-demo-1 is created only once web-demo-0 is Running and Ready.
    assert first_index(pods.lines, r"^\w+\s+web-demo-0\s+1/1\s+Running") < \
        first_index(pods.lines, r"^ADDED\s+web-demo-1\s")
    first = wait_ready(node, "web-demo-0", ns)
    ip = first["status"]["podIP"]
    assert POD_IP.fullmatch(ip)

    assert node.kubectl("exec", "-n", ns, "web-demo-0", "--", "hostname").stdout == \
        "web-demo-0\n"
    hosts = node.kubectl("exec", "-n", ns, "web-demo-0", "--", "cat", "/etc/hosts").stdout
    fqdn = "web-demo-0.nginx-demo.demo.svc.cluster.local"
    assert f"{ip}\t{fqdn}\tweb-demo-0\n" in hosts, hosts
    resolv = node.kubectl("exec", "-n", ns, "web-demo-1", "--", "cat", "/etc/resolv.conf").stdout
    assert resolv == ("search demo.svc.cluster.local svc.cluster.local cluster.local\n"
                      f"nameserver {CLUSTER_DNS_IP}\noptions ndots:5\n")

    # Another pod of the namespace finds it through cluster DNS (its own
    # /etc/hosts knows only itself).
    looked_up = node.kubectl("exec", "-n", ns, "web-demo-1", "--", "getent", "hosts",
                             "web-demo-0.nginx-demo", check=False)
    assert looked_up.returncode == 0, (
        f"getent exited {looked_up.returncode}: {looked_up.stderr}"
        + (f" ({CLUSTER_DNS_IP} was already on lo before this cluster started)"
           if footprint.dns_address_before else ""))
    assert looked_up.stdout.split() == [ip, fqdn]


# ---- restart policy and probes


def test_a_container_exiting_1_goes_through_crash_loop_back_off(node: Cluster) -> None:
    apply(node, host_pod("crash", ["sh", "-c", 'echo "run $(date +%s%N)"; exit 1']))
    seen: list[tuple[int, str, str]] = []
    starts: set[str] = set()

    def restarted_three_times() -> bool:
        pod = pod_or_none(node, "crash")
        status = container_status(pod) if pod else {}
        waiting = status.get("state", {}).get("waiting", {})
        seen.append((status.get("restartCount", 0), waiting.get("reason", ""),
                     waiting.get("message", "")))
        finished = status.get("lastState", {}).get("terminated", {})
        if finished.get("startedAt"):
            starts.add(finished["startedAt"])
        return status.get("restartCount", 0) >= 3 and len(starts) >= 3

    wait_for(restarted_three_times, 75, what="three restarts of the crashing container")
    counts = [count for count, _, _ in seen]
    assert counts == sorted(counts), counts
    assert "CrashLoopBackOff" in {reason for _, reason, _ in seen}
    messages = [m for _, r, m in seen if r == "CrashLoopBackOff"]
    delays = list(dict.fromkeys(re.findall(r"^back-off (\d+)s", m)[0] for m in messages))
    assert delays[:2] == ["10", "20"], messages
    runs = sorted(map(_seconds, starts))
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert gaps[-1] > gaps[-2] and gaps[-1] >= 15, f"runs started at {sorted(starts)}"
    assert "BackOff" in {e["reason"] for e in events_of(node, "crash")}
    previous = node.kubectl("logs", "-p", "crash").stdout
    current = node.kubectl("logs", "crash").stdout
    assert re.fullmatch(r"run \d+\n", previous) and re.fullmatch(r"run \d+\n", current)
    assert previous != current
    node.kubectl("delete", "pod", "crash", "--grace-period=1")


def _seconds(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


def test_a_failing_liveness_probe_restarts_the_container(node: Cluster) -> None:
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}
    apply(node, host_pod("live", ["sh", "-c", 'echo "run $(date +%s%N)"; exec sleep 600'],
                         livenessProbe=probe))

    def restarted() -> JSON | None:
        pod = pod_or_none(node, "live")
        status = container_status(pod) if pod else {}
        return pod if status.get("restartCount", 0) >= 1 and status.get("lastState") else None

    pod = wait_for(restarted, 40, what="a restart after the liveness probe failed")
    terminated = container_status(pod)["lastState"]["terminated"]
    assert terminated["exitCode"] == 137 and terminated["reason"] == "Error", terminated
    events = events_of(node, "live")
    assert any(e["reason"] == "Unhealthy" and e["type"] == "Warning"
               and e["message"].startswith("Liveness probe failed") for e in events), events
    assert any(e["reason"] == "Killing" and
               e["message"] == "Container c failed liveness probe, will be restarted"
               for e in events), events
    previous = node.kubectl("logs", "-p", "live").stdout
    current = wait_for(lambda: node.kubectl("logs", "live").stdout, 10,
                       what="the second run's log")
    assert re.fullmatch(r"run \d+\n", previous) and previous != current
    node.kubectl("delete", "pod", "live", "--grace-period=1")


def readiness_failed(cluster: Cluster, name: str, namespace: str) -> bool:
    return any(e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"]
               for e in events_of(cluster, name, namespace))


def test_readiness_gates_ready_deployment_availability_and_statefulset_order(
        node: Cluster) -> None:
    ns = namespace(node, "gates")
    flags = node.base_dir / "ready-flags"
    flags.mkdir()
    template = {"metadata": {"labels": {"app": "gated"}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
                    "name": "c", "image": "busybox", "command": ["sleep", "600"],
                    "readinessProbe": flag_probe(flags)}]}}
    apply(node, {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "gated", "namespace": ns},
                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "gated"}},
                          "template": template}})
    sts_template = {**template, "metadata": {"labels": {"app": "ordered"}}}
    apply(node, {"apiVersion": "apps/v1", "kind": "StatefulSet",
                 "metadata": {"name": "ordered", "namespace": ns},
                 "spec": {"replicas": 2, "serviceName": "ordered",
                          "selector": {"matchLabels": {"app": "ordered"}},
                          "template": sts_template}})

    def running(selector: str, count: int) -> list[JSON]:
        pods = get_json(node, "pods", "-n", ns, "-l", selector)["items"]
        up = [p for p in pods if p["status"].get("phase") == "Running"]
        return up if len(up) == count else []

    gated = wait_for(lambda: running("app=gated", 2), 60, what="two gated pods Running")
    wait_for(lambda: running("app=ordered", 1), 60, what="ordered-0 Running")
    for name in [*(p["metadata"]["name"] for p in gated), "ordered-0"]:
        wait_for(functools.partial(readiness_failed, node, name, ns), 30,
                 what=f"a failed readiness probe of {name}")

    def held_back() -> bool:
        pods = get_json(node, "pods", "-n", ns)["items"]
        deploy = get_json(node, "deploy", "gated", "-n", ns)
        return (not any(is_ready(p) for p in pods)
                and not deploy["status"].get("availableReplicas")
                and all(p["metadata"]["name"] != "ordered-1" for p in pods))

    holds_for(held_back, 3, what="no pod Ready, nothing available, no ordered-1")

    for pod in gated:
        (flags / pod["metadata"]["name"]).touch()
    wait_for(lambda: get_json(node, "deploy", "gated", "-n", ns)["status"].get(
        "availableReplicas") == 2, 30, what="the Deployment available")
    (flags / "ordered-0").touch()
    wait_for(lambda: pod_or_none(node, "ordered-1", ns), 30, what="ordered-1 created")
    (flags / "ordered-1").touch()
    wait_for(lambda: get_json(node, "sts", "ordered", "-n", ns)["status"].get(
        "readyReplicas") == 2, 30, what="both StatefulSet pods Ready")
    node.kubectl("delete", "namespace", ns, "--wait=false")


# ---- the controllers' Deployment acceptance, with pods on this node


def test_seed_deployment_rolls_from_v1_to_v2_on_this_node(node: Cluster) -> None:
    ns = namespace(node, "rollout")
    readiness = {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1}

    def seed(path: Path) -> JSON:
        return with_host_command(seed_object(path, namespace=ns), [*HTTP_SERVER, "80"],
                                 readinessProbe=readiness)

    apply(node, seed(DEPLOY_FILE))
    node.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", ns, "--timeout=90s",
                 timeout=120)
    old = {p["metadata"]["name"] for p in get_json(node, "pods", "-n", ns)["items"]}
    assert len(old) == 3
    watch = node.spawn("get", "pod", "-n", ns, "-w", "--output-watch-events")
    for name in old:
        watch.wait_for_line(rf"^ADDED\s+{name}\s", timeout=30)
    apply(node, seed(DEPLOY_V2_FILE))
    status = node.kubectl("rollout", "status", f"deployment/{DEPLOYMENT}", "-n", ns,
                          "--timeout=90s", timeout=120).stdout
    assert status.endswith(f'deployment "{DEPLOYMENT}" successfully rolled out\n')
    for name in old:
        watch.wait_for_line(rf"^DELETED\s+{name}\s", timeout=30)

    # 3 replicas, maxSurge 1, maxUnavailable 0: at most 4 pods count, at least 3 serve.
    states = list(replay(watch_rows(watch.lines)))[len(old) - 1:]
    assert max(counted(state) for state in states) == 4
    assert min(available(state) for state in states) == 3
    node_name = local_node_name(node)
    for pod in get_json(node, "pods", "-n", ns)["items"]:
        assert pod["metadata"]["labels"]["version"] == "v2"
        assert pod["spec"]["nodeName"] == node_name
        assert http_get(f"http://{pod['status']['podIP']}:80/")[0] == 200
    node.kubectl("delete", "namespace", ns, "--wait=false")


# ---- the agent's restart, and the cluster's stop


def test_a_sigkilled_agent_is_restarted_and_adopts_its_pods(node: Cluster) -> None:
    cluster = node
    apply(cluster, host_pod("keeper", POLITE))
    apply(cluster, host_pod("doomed", POLITE))
    keeper, doomed = wait_ready(cluster, "keeper"), wait_ready(cluster, "doomed")
    keeper_pid, doomed_pid = container_main_pid(keeper), container_main_pid(doomed)
    before = container_status(keeper)

    old_agent = agent_pid(cluster)
    assert old_agent is not None, "no agent among the children of kubi up"
    # Frozen, then killed: the pod deleted meanwhile is the new agent's to clean up.
    os.kill(old_agent, signal.SIGSTOP)
    cluster.kubectl("delete", "pod", "doomed", "--wait=false")
    os.kill(old_agent, signal.SIGKILL)
    wait_for(lambda: not alive(old_agent), 10, what="the agent gone")
    assert alive(keeper_pid) and alive(doomed_pid), "pods died with their agent"

    new_agent = wait_for(lambda: (p := agent_pid(cluster)) != old_agent and p, 15,
                         what="a new agent started by kubi up")
    assert new_agent != old_agent
    wait_for(lambda: pod_or_none(cluster, "doomed") is None, 30,
             what="the pod deleted while the agent was down removed")
    assert not alive(doomed_pid) and not pids_in_cgroup(container_id(doomed))

    # The new agent's workers are all running now (doomed's has finished):
    # keeper stays as it was, under the new agent's resyncs.
    def adopted() -> bool:
        pod = pod_or_none(cluster, "keeper")
        after = container_status(pod) if pod else {}
        return (pod is not None and is_ready(pod)
                and after.get("containerID") == before["containerID"]
                and after.get("restartCount") == before["restartCount"] == 0
                and after["state"].get("running") == before["state"]["running"]
                and container_main_pid(pod) == keeper_pid)

    holds_for(adopted, 3, what="keeper adopted: same container, process and restartCount")
    assert cluster.kubectl("exec", "keeper", "--", "hostname").stdout == "keeper\n"


def test_stopping_kubi_up_leaves_nothing_on_the_machine(
        node_cluster: tuple[Cluster, Footprint]) -> None:
    """Last in the module: it stops the cluster the others share."""
    cluster, footprint = node_cluster
    limits = {"limits": {"memory": "64Mi", "cpu": "200m"}}
    apply(cluster, host_pod("limited", POLITE, resources=limits))
    apply(cluster, host_pod("stubborn", ["sleep", "600"], grace=3))
    wait_ready(cluster, "limited")
    wait_ready(cluster, "stubborn")
    footprint.note_pods(cluster)
    assert footprint.sandbox_ids and footprint.pod_uids
    assert {f"kv{s[:12]}" for s in footprint.sandbox_ids} <= link_names(), \
        "the pods' veths were not found while they run"

    assert cluster.stop(STOP_TIMEOUT) == 0
    assert "killed leftover processes" not in cluster.server_output.read_text(), \
        "a process of kubi's group outlived kubi up"
    assert footprint.leftovers() == []

