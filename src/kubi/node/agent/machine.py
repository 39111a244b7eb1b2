"""Facts about the machine the agent runs on, read from the kernel and /etc.

Capacity (CPUs, MemTotal, the data directory's filesystem), identity
(machine-id, boot id, product uuid, hostname), the OS image and kernel
release, and the node's primary IPv4 address: the address of the interface
carrying the default route in /proc/net/route, else of the first interface
that is up and not loopback nor one of the pod network's own (bridge, veths).
Addresses are read with the SIOCGIFADDR ioctl; nothing is sent on the network.
`pressure` samples what the node conditions report: available memory, free
disk and PIDs in use.
"""

from __future__ import annotations

import fcntl
import os
import platform
import socket
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

SIOCGIFADDR = 0x8915
# Interfaces that belong to pod networking, never the node's own address.
_POD_INTERFACE_PREFIXES = ("kubi", "veth", "cni", "flannel", "docker", "br-", "virbr", "lo")


@dataclass
class MachineInfo:
    hostname: str
    cpus: int
    memory_kib: int
    storage_kib: int
    internal_ip: str
    machine_id: str
    system_uuid: str
    boot_id: str
    kernel_version: str
    os_image: str
    architecture: str


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """/proc/meminfo in KiB."""
    out: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            out[key.strip()] = int(words[0])
    return out


def os_image(os_release: str) -> str:
    """PRETTY_NAME of an os-release file, as the kubelet reports osImage."""
    fields = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'")
    return fields.get("PRETTY_NAME") or fields.get("NAME") or "Linux"


def go_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x"}.get(machine, machine)


def default_route_interface(route_table: str) -> str | None:
    """The interface of the default route in /proc/net/route (lowest metric)."""
    best: tuple[int, str] | None = None
    for line in route_table.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000":
            continue
        metric = int(cols[6]) if cols[6].isdigit() else 0
        if best is None or metric < best[0]:
            best = (metric, cols[0])
    return best[1] if best else None


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of interface `name`, asked of the kernel."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def primary_ipv4() -> str:
    """The node's InternalIP."""
    preferred = default_route_interface(_read("/proc/net/route"))
    if preferred and not preferred.startswith(_POD_INTERFACE_PREFIXES):
        address = interface_ipv4(preferred)
        if address:
            return address
    for _, name in socket.if_nameindex():
        if name.startswith(_POD_INTERFACE_PREFIXES):
            continue
        address = interface_ipv4(name)
        if address and not address.startswith("127."):
            return address
    return "127.0.0.1"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def storage_kib(path: str | Path) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize // 1024


def gather(data_dir: str | Path, hostname: str | None = None) -> MachineInfo:
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id")
    product_uuid = _read("/sys/class/dmi/id/product_uuid")
    if not product_uuid and machine_id:
        product_uuid = str(uuid.UUID(machine_id[:32].ljust(32, "0")))
    return MachineInfo(
        hostname=(hostname or socket.gethostname()).lower(),
        cpus=_cpus(),
        memory_kib=meminfo().get("MemTotal", 0),
        storage_kib=storage_kib(data_dir),
        internal_ip=primary_ipv4(),
        machine_id=machine_id,
        system_uuid=product_uuid.lower(),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
        kernel_version=platform.release(),
        os_image=os_image(_read("/etc/os-release")),
        architecture=go_arch(platform.machine()),
    )


@dataclass
class Pressure:
    memory_available_kib: int
    disk_available_fraction: float
    pids_used_fraction: float


def pressure(data_dir: str | Path) -> Pressure:
    mem = meminfo()
    st = os.statvfs(data_dir)
    disk = st.f_bavail / st.f_blocks if st.f_blocks else 1.0
    pid_max = int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)
    try:
        pids = sum(1 for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        pids = 0
    return Pressure(mem.get("MemAvailable", mem.get("MemFree", 0)), disk, pids / pid_max)
