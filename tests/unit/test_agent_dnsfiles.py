"""A pod's /etc/hosts and /etc/resolv.conf."""

from __future__ import annotations

from typing import Any

from kubi.node.agent.dnsfiles import hosts_file, parse_resolv_conf, pod_hostname, resolv_conf

NODE_RESOLV = "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-demo-0", "namespace": "demo"}, "spec": spec}


def test_hosts_file_with_subdomain_names_the_fqdn() -> None:
    text = hosts_file(pod(hostname="web-demo-0", subdomain="nginx-demo"), ["10.42.0.7"])
    assert text == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        "10.42.0.7\tweb-demo-0.nginx-demo.demo.svc.cluster.local\tweb-demo-0\n")


def test_hosts_file_plain_and_with_aliases() -> None:
    text = hosts_file(pod(hostAliases=[{"ip": "10.1.2.3", "hostnames": ["a", "b"]}]),
                      ["10.42.0.8"])
    assert "10.42.0.8\tweb-demo-0\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n10.1.2.3\ta\tb\n")


def test_host_network_pods_get_the_nodes_hosts() -> None:
    text = hosts_file(pod(hostNetwork=True), ["192.0.2.1"], node_hosts="127.0.0.1 localhost\n")
    assert text == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"


def test_hostname_is_cut_to_63() -> None:
    long = {"metadata": {"name": "a" * 62 + "-b", "namespace": "x"}, "spec": {}}
    assert pod_hostname(long) == "a" * 62


def test_cluster_first() -> None:
    assert resolv_conf(pod(), node_resolv=NODE_RESOLV) == (
        "search demo.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "nameserver 10.43.0.10\n"
        "options ndots:5\n")


def test_default_policy_copies_the_node() -> None:
    text = resolv_conf(pod(dnsPolicy="Default"), node_resolv=NODE_RESOLV)
    assert text == "search corp.example\nnameserver 192.0.2.53\noptions edns0\n"


def test_host_network_falls_back_unless_cluster_first_with_host_net() -> None:
    assert "10.43.0.10" not in resolv_conf(pod(hostNetwork=True), node_resolv=NODE_RESOLV)
    text = resolv_conf(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"),
                       node_resolv=NODE_RESOLV)
    assert "nameserver 10.43.0.10\n" in text


def test_none_policy_uses_dns_config_only() -> None:
    text = resolv_conf(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["1.1.1.1"], "searches": ["a.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}),
        node_resolv=NODE_RESOLV)
    assert text == "search a.example\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"


def test_dns_config_merges_into_cluster_first() -> None:
    text = resolv_conf(pod(dnsConfig={"nameservers": ["10.43.0.10", "9.9.9.9"],
                                      "options": [{"name": "ndots", "value": "1"}]}))
    assert "nameserver 10.43.0.10\nnameserver 9.9.9.9\n" in text
    assert text.endswith("options ndots:1\n")


def test_parse_resolv_conf() -> None:
    conf = parse_resolv_conf("# comment\nnameserver 1.2.3.4\ndomain x\nsearch a b\n")
    assert conf.nameservers == ["1.2.3.4"] and conf.searches == ["a", "b"]
