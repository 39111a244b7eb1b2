"""A pod's /etc/hosts and /etc/resolv.conf, rendered as the kubelet writes them.

/etc/hosts starts with the kubelet's fixed header and loopback entries, then
maps each pod IP to the pod's hostname (as `<hostname>.<subdomain>.<ns>.svc.
<domain>  <hostname>` when the pod has a subdomain, which is how a StatefulSet
pod finds its own stable name), then the pod's hostAliases. Pods on the host
network get the node's own hosts file under a different header.

resolv.conf follows `dnsPolicy`: ClusterFirst points at the cluster DNS with
the namespace's search path and ndots:5 (host-network pods fall back to the
node's resolver unless the policy is ClusterFirstWithHostNet), Default copies
the node's resolver, None starts empty; `dnsConfig` is then merged in. All
functions are pure; the node's files are read by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CLUSTER_DNS = "10.43.0.10"
CLUSTER_DOMAIN = "cluster.local"
DEFAULT_NDOTS = "ndots:5"
MAX_NAMESERVERS = 3
MAX_SEARCH_DOMAINS = 32
MAX_SEARCH_CHARS = 2048
MAX_HOSTNAME = 63

_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
_HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
_LOOPBACK_ENTRIES = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines.extend(f"nameserver {ns}" for ns in self.nameservers)
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


def parse_resolv_conf(text: str) -> ResolvConf:
    """The nameservers, search domains and options of a resolv.conf."""
    conf = ResolvConf()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        words = line.split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            conf.nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            # The last search/domain line wins, as the resolver reads it.
            conf.searches = words[1:]
        elif words[0] == "options":
            conf.options.extend(words[1:])
    return conf


def pod_hostname(pod: dict[str, Any]) -> str:
    """spec.hostname, else the pod name cut to 63 characters (without a trailing '-' or '.')."""
    spec = pod.get("spec") or {}
    name = spec.get("hostname") or pod["metadata"]["name"]
    if len(name) > MAX_HOSTNAME:
        name = name[:MAX_HOSTNAME].rstrip("-.")
    return name


def pod_domain(pod: dict[str, Any], cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """`<subdomain>.<namespace>.svc.<cluster domain>`, or "" without a subdomain."""
    subdomain = (pod.get("spec") or {}).get("subdomain")
    if not subdomain:
        return ""
    return f"{subdomain}.{pod['metadata'].get('namespace', 'default')}.svc.{cluster_domain}"


def hosts_file(pod: dict[str, Any], pod_ips: list[str], *, node_hosts: str = "",
               cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The pod's /etc/hosts."""
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        text = _HOSTS_HEADER_HOST_NETWORK + node_hosts
    else:
        hostname = pod_hostname(pod)
        domain = pod_domain(pod, cluster_domain)
        text = _HOSTS_HEADER + _LOOPBACK_ENTRIES
        for ip in pod_ips:
            if domain:
                text += f"{ip}\t{hostname}.{domain}\t{hostname}\n"
            else:
                text += f"{ip}\t{hostname}\n"
    aliases = spec.get("hostAliases") or []
    if aliases:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            text += f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) + "\n"
    return text


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _trim_searches(searches: list[str]) -> list[str]:
    """Keep within the resolver's limits: 32 domains, 2048 characters in all."""
    out: list[str] = []
    used = 0
    for domain in searches[:MAX_SEARCH_DOMAINS]:
        cost = len(domain) + (1 if out else 0)
        if used + cost > MAX_SEARCH_CHARS:
            break
        out.append(domain)
        used += cost
    return out


def _merge_options(base: list[str], extra: list[dict[str, Any]]) -> list[str]:
    """dnsConfig options override same-named ones; `ndots:5` style is kept."""
    merged: dict[str, str] = {}
    for opt in base:
        merged[opt.partition(":")[0]] = opt
    for entry in extra:
        name = entry.get("name") or ""
        if not name:
            continue
        value = entry.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return list(merged.values())


def effective_dns_policy(pod: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        # Host-network pods keep the node's resolver unless they ask otherwise.
        return "Default"
    if policy == "ClusterFirstWithHostNet":
        return "ClusterFirst"
    return policy


def resolv_conf(pod: dict[str, Any], *, node_resolv: str = "", cluster_dns: str = CLUSTER_DNS,
                cluster_domain: str = CLUSTER_DOMAIN) -> str:
    """The pod's /etc/resolv.conf."""
    spec = pod.get("spec") or {}
    host = parse_resolv_conf(node_resolv)
    policy = effective_dns_policy(pod)
    if policy == "None":
        conf = ResolvConf()
    elif policy == "Default":
        conf = ResolvConf(list(host.nameservers), list(host.searches), list(host.options))
    else:
        namespace = pod["metadata"].get("namespace", "default")
        searches = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        conf = ResolvConf([cluster_dns], searches + host.searches, [DEFAULT_NDOTS])
    extra = spec.get("dnsConfig") or {}
    conf.nameservers = _dedupe(conf.nameservers + list(extra.get("nameservers") or []))
    conf.nameservers = conf.nameservers[:MAX_NAMESERVERS]
    conf.searches = _trim_searches(_dedupe(conf.searches + list(extra.get("searches") or [])))
    conf.options = _merge_options(conf.options, list(extra.get("options") or []))
    return conf.render()
