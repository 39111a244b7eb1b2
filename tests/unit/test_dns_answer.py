"""Answers of cluster DNS, record for record, as CoreDNS's kubernetes plugin gives them."""

from __future__ import annotations

from dnslib import OPCODE, DNSRecord

from kubi.dns.table import RecordTable
from tests.unit.dns_fixtures import (
    SOA,
    ask,
    authority,
    endpoint,
    endpoint_slice,
    seed_table,
    service,
)

SEED_POD = "web-demo-0.nginx-demo.demo.svc.cluster.local."


# ---- the seed: a StatefulSet behind the headless Service nginx-demo


def test_statefulset_pod_name_resolves_to_its_ip() -> None:
    auth = authority(seed_table())
    rcode, answer, soa, _ = ask(auth, "web-demo-0.nginx-demo.demo.svc.cluster.local")
    assert (rcode, answer, soa) == ("NOERROR", [f"{SEED_POD} 5 A 10.244.0.39"], [])
    _, answer, _, _ = ask(auth, "web-demo-1.nginx-demo.demo.svc.cluster.local")
    assert answer == ["web-demo-1.nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.40"]


def test_headless_service_lists_ready_endpoints() -> None:
    rcode, answer, _, _ = ask(authority(seed_table()), "nginx-demo.demo.svc.cluster.local")
    assert rcode == "NOERROR"
    assert answer == ["nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.39",
                      "nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.40"]


def test_pod_ip_reverse_names_the_statefulset_pod() -> None:
    _, answer, _, _ = ask(authority(seed_table()), "39.0.244.10.in-addr.arpa", "PTR")
    assert answer == [f"39.0.244.10.in-addr.arpa. 5 PTR {SEED_POD}"]


def test_dns_server_ip_reverse_names_kube_dns() -> None:
    # busybox's nslookup prints this name on its "Server:" line.
    _, answer, _, _ = ask(authority(seed_table()), "10.0.43.10.in-addr.arpa", "PTR")
    assert answer == ["10.0.43.10.in-addr.arpa. 5 PTR kube-dns.kube-system.svc.cluster.local."]


def test_names_are_case_insensitive_and_echoed_as_asked() -> None:
    auth = authority(seed_table())
    rcode, answer, _, _ = ask(auth, "Web-Demo-0.NGINX-demo.Demo.svc.Cluster.LOCAL")
    assert rcode == "NOERROR"
    assert answer == ["Web-Demo-0.NGINX-demo.Demo.svc.Cluster.LOCAL. 5 A 10.244.0.39"]
    _, _, soa, _ = ask(auth, "nope.demo.svc.Cluster.LOCAL")
    assert soa[0].startswith(
        "Cluster.LOCAL. 5 SOA ns.dns.Cluster.LOCAL. hostmaster.Cluster.LOCAL.")


def test_responses_are_authoritative_without_recursion() -> None:
    message = authority(seed_table()).answer(
        DNSRecord.question("nginx-demo.demo.svc.cluster.local")).message
    flags = message.header
    assert (flags.aa, flags.ra, flags.rd, flags.qr) == (1, 0, 1, 1)


# ---- NXDOMAIN versus NODATA


def test_existing_name_without_that_type_is_nodata_with_soa() -> None:
    auth = authority(seed_table())
    assert ask(auth, "nginx-demo.demo.svc.cluster.local", "AAAA") == ("NOERROR", [], [SOA], [])
    assert ask(auth, "kubernetes.default.svc.cluster.local", "MX") == ("NOERROR", [], [SOA], [])
    assert ask(auth, "kubernetes.default.svc.cluster.local", "TXT") == ("NOERROR", [], [SOA], [])


def test_missing_names_are_nxdomain_with_soa() -> None:
    auth = authority(seed_table())
    for name in ("nope.demo.svc.cluster.local", "nginx-demo.nope.svc.cluster.local",
                 "web-demo-9.nginx-demo.demo.svc.cluster.local", "foo.cluster.local",
                 "a.b.c.nginx-demo.demo.svc.cluster.local", "nope.svc.cluster.local",
                 "web-demo-0.nginx-demo.demo.svc.cluster.local.demo.svc.cluster.local"):
        assert ask(auth, name) == ("NXDOMAIN", [], [SOA], []), name
    assert ask(auth, "nope.demo.svc.cluster.local", "MX")[0] == "NXDOMAIN"
    assert ask(auth, "nope.demo.svc.cluster.local", "TXT")[0] == "NXDOMAIN"


def test_structural_names_exist_without_data() -> None:
    auth = authority(seed_table())
    for name in ("cluster.local", "svc.cluster.local", "pod.cluster.local",
                 "demo.svc.cluster.local", "demo.pod.cluster.local"):
        assert ask(auth, name) == ("NOERROR", [], [SOA], []), name


def test_misses_are_servfail_until_caches_sync() -> None:
    auth = authority(seed_table(), synced=lambda: False)
    assert ask(auth, "nope.demo.svc.cluster.local")[0] == "SERVFAIL"
    assert ask(auth, "nginx-demo.demo.svc.cluster.local")[0] == "NOERROR"


# ---- ClusterIP Services and SRV


def test_cluster_ip_service_answers_its_cluster_ip() -> None:
    _, answer, _, _ = ask(authority(seed_table()), "kubernetes.default.svc.cluster.local")
    assert answer == ["kubernetes.default.svc.cluster.local. 5 A 10.43.0.1"]


def test_srv_for_a_cluster_ip_port() -> None:
    rcode, answer, _, extra = ask(authority(seed_table()),
                                  "_https._tcp.kubernetes.default.svc.cluster.local", "SRV")
    assert rcode == "NOERROR"
    assert answer == [("_https._tcp.kubernetes.default.svc.cluster.local. 5 SRV "
                       "0 100 443 kubernetes.default.svc.cluster.local.")]
    assert extra == ["kubernetes.default.svc.cluster.local. 5 A 10.43.0.1"]


def test_srv_for_a_headless_port_names_each_endpoint() -> None:
    _, answer, _, extra = ask(authority(seed_table()),
                              "_web._tcp.nginx-demo.demo.svc.cluster.local", "SRV")
    assert answer == [
        f"_web._tcp.nginx-demo.demo.svc.cluster.local. 5 SRV 0 50 80 {SEED_POD}",
        ("_web._tcp.nginx-demo.demo.svc.cluster.local. 5 SRV 0 50 80 "
         "web-demo-1.nginx-demo.demo.svc.cluster.local.")]
    assert extra == [f"{SEED_POD} 5 A 10.244.0.39",
                     "web-demo-1.nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.40"]


def test_srv_on_the_service_name_lists_every_port() -> None:
    table = seed_table()
    table.apply_service(service("web", "demo", "10.43.7.7", ports=[
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "https", "port": 443, "protocol": "TCP"}]))
    _, answer, _, extra = ask(authority(table), "web.demo.svc.cluster.local", "SRV")
    assert answer == ["web.demo.svc.cluster.local. 5 SRV 0 50 80 web.demo.svc.cluster.local.",
                      "web.demo.svc.cluster.local. 5 SRV 0 50 443 web.demo.svc.cluster.local."]
    assert extra == ["web.demo.svc.cluster.local. 5 A 10.43.7.7"]


def test_srv_records_repeating_a_target_and_port_are_dropped() -> None:
    # kube-dns serves 53 over UDP and TCP: one SRV record, weighted as one of two.
    _, answer, _, _ = ask(authority(seed_table()), "kube-dns.kube-system.svc.cluster.local", "SRV")
    assert answer == [("kube-dns.kube-system.svc.cluster.local. 5 SRV 0 50 53 "
                       "kube-dns.kube-system.svc.cluster.local.")]


def test_srv_port_and_protocol_must_match() -> None:
    auth = authority(seed_table())
    assert ask(auth, "_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV")[0] == "NOERROR"
    assert ask(auth, "_dns._tcp.kube-dns.kube-system.svc.cluster.local", "SRV")[0] == "NXDOMAIN"
    assert ask(auth, "_nope._tcp.nginx-demo.demo.svc.cluster.local", "SRV")[0] == "NXDOMAIN"
    # The port labels narrow the Service's addresses for A queries as well.
    _, answer, _, _ = ask(auth, "_dns._udp.kube-dns.kube-system.svc.cluster.local")
    assert answer == ["_dns._udp.kube-dns.kube-system.svc.cluster.local. 5 A 10.43.0.10"]


# ---- endpoints


def test_endpoint_without_hostname_is_named_by_its_dashed_ip() -> None:
    table = seed_table()
    table.apply_service(service("db", "demo"))
    table.apply_endpoint_slice(endpoint_slice("db-1", "demo", "db", [endpoint("10.244.1.5")]))
    _, answer, _, _ = ask(authority(table), "10-244-1-5.db.demo.svc.cluster.local")
    assert answer == ["10-244-1-5.db.demo.svc.cluster.local. 5 A 10.244.1.5"]
    _, answer, _, _ = ask(authority(table), "5.1.244.10.in-addr.arpa", "PTR")
    assert answer == ["5.1.244.10.in-addr.arpa. 5 PTR 10-244-1-5.db.demo.svc.cluster.local."]


def test_endpoint_names_work_under_cluster_ip_services_too() -> None:
    table = seed_table()
    table.apply_service(service("web", "demo", "10.43.7.7"))
    table.apply_endpoint_slice(endpoint_slice("web-1", "demo", "web", [endpoint("10.244.1.6")]))
    _, answer, _, _ = ask(authority(table), "10-244-1-6.web.demo.svc.cluster.local")
    assert answer == ["10-244-1-6.web.demo.svc.cluster.local. 5 A 10.244.1.6"]
    _, answer, _, _ = ask(authority(table), "web.demo.svc.cluster.local")
    assert answer == ["web.demo.svc.cluster.local. 5 A 10.43.7.7"]


def test_not_ready_endpoints_are_left_out() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0"), endpoint("10.244.0.40", "web-demo-1", ready=False)]))
    _, answer, _, _ = ask(authority(table), "nginx-demo.demo.svc.cluster.local")
    assert answer == ["nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.39"]
    assert ask(authority(table), "web-demo-1.nginx-demo.demo.svc.cluster.local")[0] == "NXDOMAIN"


def test_headless_service_without_ready_endpoints_is_nxdomain() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0", ready=False)]))
    assert ask(authority(table), "nginx-demo.demo.svc.cluster.local")[0] == "NXDOMAIN"


def test_publish_not_ready_addresses_includes_unready_endpoints() -> None:
    table = seed_table()
    table.apply_service(service("nginx-demo", "demo", publishNotReadyAddresses=True))
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0", ready=False)]))
    _, answer, _, _ = ask(authority(table), "web-demo-0.nginx-demo.demo.svc.cluster.local")
    assert answer == [f"{SEED_POD} 5 A 10.244.0.39"]


def test_unset_ready_condition_counts_as_ready() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0", ready=None)]))
    assert ask(authority(table), "web-demo-0.nginx-demo.demo.svc.cluster.local")[0] == "NOERROR"


def test_ipv6_endpoints() -> None:
    table = seed_table()
    table.apply_service(service("v6", "demo", ipFamilies=["IPv6"]))
    table.apply_endpoint_slice(endpoint_slice("v6-1", "demo", "v6", [endpoint("fd00:10::")],
                                              address_type="IPv6"))
    auth = authority(table)
    _, answer, _, _ = ask(auth, "v6.demo.svc.cluster.local", "AAAA")
    assert answer == ["v6.demo.svc.cluster.local. 5 AAAA fd00:10::"]
    assert ask(auth, "v6.demo.svc.cluster.local", "A")[:2] == ("NOERROR", [])
    # A trailing "::" becomes "--" and then "--0": a label cannot end in a dash.
    _, answer, _, _ = ask(auth, "fd00-10--0.v6.demo.svc.cluster.local", "AAAA")
    assert answer == ["fd00-10--0.v6.demo.svc.cluster.local. 5 AAAA fd00:10::"]
    reverse = "0." * 24 + "0.1.0.0.0.0.d.f.ip6.arpa"
    _, answer, _, _ = ask(auth, reverse, "PTR")
    assert answer == [f"{reverse}. 5 PTR fd00-10--0.v6.demo.svc.cluster.local."]


# ---- ExternalName


def test_external_name_is_a_cname() -> None:
    table = seed_table()
    table.apply_service(service("ext", "demo", "", type="ExternalName",
                                externalName="www.example.com", ports=[]))
    auth = authority(table)
    _, answer, _, _ = ask(auth, "ext.demo.svc.cluster.local")
    assert answer == ["ext.demo.svc.cluster.local. 5 CNAME www.example.com."]
    _, answer, _, _ = ask(auth, "ext.demo.svc.cluster.local", "CNAME")
    assert answer == ["ext.demo.svc.cluster.local. 5 CNAME www.example.com."]
    assert ask(auth, "ext.demo.svc.cluster.local", "SRV")[:2] == ("NOERROR", [])
    assert ask(auth, "x.ext.demo.svc.cluster.local")[0] == "NXDOMAIN"
    reply = auth.answer(DNSRecord.question("ext.demo.svc.cluster.local"))
    assert reply.external == ["www.example.com"]


def test_external_name_inside_the_cluster_is_followed() -> None:
    table = seed_table()
    table.apply_service(service("alias", "demo", "", type="ExternalName",
                                externalName="kubernetes.default.svc.cluster.local.", ports=[]))
    _, answer, _, _ = ask(authority(table), "alias.demo.svc.cluster.local")
    assert answer == ["alias.demo.svc.cluster.local. 5 CNAME kubernetes.default.svc.cluster.local.",
                      "kubernetes.default.svc.cluster.local. 5 A 10.43.0.1"]


def test_external_name_loops_end() -> None:
    table = seed_table()
    table.apply_service(service("a", "demo", "", type="ExternalName",
                                externalName="b.demo.svc.cluster.local", ports=[]))
    table.apply_service(service("b", "demo", "", type="ExternalName",
                                externalName="a.demo.svc.cluster.local", ports=[]))
    assert ask(authority(table), "a.demo.svc.cluster.local")[:2] == ("NOERROR", [])


# ---- pods


def test_pod_names_in_insecure_mode_answer_any_address() -> None:
    auth = authority(seed_table())
    _, answer, _, _ = ask(auth, "10-244-0-39.demo.pod.cluster.local")
    assert answer == ["10-244-0-39.demo.pod.cluster.local. 5 A 10.244.0.39"]
    assert ask(auth, "10-244-0-39.nope.pod.cluster.local")[0] == "NXDOMAIN"
    assert ask(auth, "web-demo-0.demo.pod.cluster.local")[0] == "NXDOMAIN"


def test_pod_names_in_verified_mode_need_a_pod() -> None:
    table = seed_table()
    auth = authority(table, pod_mode="verified")
    assert ask(auth, "10-244-0-39.demo.pod.cluster.local")[0] == "NXDOMAIN"
    table.apply_pod({"metadata": {"name": "web-demo-0", "namespace": "demo"},
                     "status": {"podIP": "10.244.0.39", "podIPs": [{"ip": "10.244.0.39"}]}})
    assert ask(auth, "10-244-0-39.demo.pod.cluster.local")[0] == "NOERROR"
    assert ask(auth, "10-244-0-39.default.pod.cluster.local")[0] == "NXDOMAIN"


def test_pod_names_disabled() -> None:
    auth = authority(seed_table(), pod_mode="disabled")
    assert ask(auth, "10-244-0-39.demo.pod.cluster.local")[0] == "NXDOMAIN"


# ---- the zone itself, reverse zones, and names that are not ours


def test_zone_apex_soa_ns_and_schema_version() -> None:
    auth = authority(seed_table())
    assert ask(auth, "cluster.local", "SOA")[1] == [SOA]
    _, answer, _, extra = ask(auth, "cluster.local", "NS")
    assert answer == ["cluster.local. 5 NS kube-dns.kube-system.svc.cluster.local."]
    assert extra == ["kube-dns.kube-system.svc.cluster.local. 5 A 10.43.0.10"]
    _, answer, _, _ = ask(auth, "ns.dns.cluster.local")
    assert answer == ["ns.dns.cluster.local. 5 A 10.43.0.10"]
    _, answer, _, _ = ask(auth, "dns-version.cluster.local", "TXT")
    assert answer == ['dns-version.cluster.local. 28800 TXT "1.1.0"']


def test_unknown_reverse_names_are_nxdomain_in_the_reverse_zone() -> None:
    rcode, _, auth, _ = ask(authority(seed_table()), "1.2.3.4.in-addr.arpa", "PTR")
    assert rcode == "NXDOMAIN"
    assert auth == [("in-addr.arpa. 5 SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. "
                     "1700000000 7200 1800 86400 5")]
    assert ask(authority(seed_table()), "2.3.4.in-addr.arpa", "PTR")[0] == "NXDOMAIN"


def test_names_outside_the_cluster_are_refused() -> None:
    auth = authority(seed_table())
    reply = auth.answer(DNSRecord.question("example.com"))
    assert reply.outside
    assert ask(auth, "example.com") == ("REFUSED", [], [], [])
    assert ask(auth, "local") == ("REFUSED", [], [], [])


def test_zone_transfers_and_other_opcodes_are_refused() -> None:
    auth = authority(seed_table())
    assert ask(auth, "cluster.local", "AXFR")[0] == "REFUSED"
    update = DNSRecord.question("cluster.local")
    update.header.opcode = OPCODE.UPDATE
    assert auth.answer(update).message.header.rcode == 4  # NOTIMP


def test_an_empty_table_knows_no_namespace() -> None:
    assert ask(authority(RecordTable()), "kubernetes.default.svc.cluster.local")[0] == "NXDOMAIN"
