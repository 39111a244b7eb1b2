"""Machine facts and the Node the agent registers; the relist's change detection."""

from __future__ import annotations

from kubi.node.agent.machine import (
    MachineInfo,
    Pressure,
    default_route_interface,
    go_arch,
    os_image,
)
from kubi.node.agent.node import capacity, node_object, node_status
from kubi.node.agent.pleg import changed_uids

INFO = MachineInfo(hostname="n1", cpus=8, memory_kib=16318480, storage_kib=102687672,
                   internal_ip="192.0.2.7", machine_id="abc", system_uuid="u", boot_id="b",
                   kernel_version="6.1.0", os_image="Debian GNU/Linux 12 (bookworm)",
                   architecture="amd64")

ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
"""


def test_default_route_interface() -> None:
    assert default_route_interface(ROUTES) == "eth0"
    assert default_route_interface("Iface\tDestination\n") is None


def test_os_image_and_arch() -> None:
    assert os_image('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n') == \
        "Debian GNU/Linux 12 (bookworm)"
    assert os_image("") == "Linux"
    assert go_arch("x86_64") == "amd64" and go_arch("aarch64") == "arm64"


def test_capacity_in_kubelet_units() -> None:
    assert capacity(INFO) == {"cpu": "8", "ephemeral-storage": "102687672Ki",
                              "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                              "memory": "16318480Ki", "pods": "110"}


def test_node_status_reports_conditions_and_endpoint() -> None:
    calm = Pressure(memory_available_kib=10_000_000, disk_available_fraction=0.5,
                    pids_used_fraction=0.01)
    status = node_status(INFO, name="n1", port=10250, runtime_version="kubi-host://0.1",
                         handlers=["host", "sim"], pressure=calm, ready=True)
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert [c["type"] for c in status["conditions"]] == \
        ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert status["conditions"][-1]["reason"] == "KubeletReady"
    assert status["allocatable"]["memory"] == "16216080Ki"
    assert status["nodeInfo"]["kubeletVersion"] == "v1.33.0-kubi"
    tight = Pressure(memory_available_kib=50_000, disk_available_fraction=0.05,
                     pids_used_fraction=0.99)
    flags = {c["type"]: c["status"] for c in node_status(
        INFO, name="n1", port=1, runtime_version="x", handlers=[], pressure=tight,
        ready=False, not_ready_message="why")["conditions"]}
    assert flags == {"MemoryPressure": "True", "DiskPressure": "True", "PIDPressure": "True",
                     "Ready": "False"}


def test_node_object_labels() -> None:
    node = node_object(INFO, name="n1", port=10250, runtime_version="kubi-host://0.1",
                       default_handler="host", handlers=["host", "sim"])
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["metadata"]["labels"]["kubernetes.io/arch"] == "amd64"
    assert node["status"]["conditions"][-1]["status"] == "False"


def test_relist_change_detection() -> None:
    before = {"c/1": ("CONTAINER_RUNNING", "u1"), "c/2": ("CONTAINER_RUNNING", "u2"),
              "s/a": ("SANDBOX_READY", "u3")}
    after = {"c/1": ("CONTAINER_EXITED", "u1"), "c/2": ("CONTAINER_RUNNING", "u2"),
             "c/4": ("CONTAINER_CREATED", "u4")}
    assert changed_uids(before, after) == {"u1", "u3", "u4"}
    assert changed_uids(after, after) == set()
