"""The record table follows Services, EndpointSlices, Namespaces and Pods one event at a time."""

from __future__ import annotations

from kubi.dns.table import EndpointRow, PortSpec, RecordTable, service_entry
from tests.unit.dns_fixtures import (
    endpoint,
    endpoint_slice,
    namespace,
    seed_table,
    service,
)

WEB = PortSpec("web", "TCP", 80)


def rows(table: RecordTable, ns: str, name: str) -> list[tuple[str, str]]:
    return [(r.hostname, r.ip) for r in table.endpoint_rows(ns, name)]


def test_service_entry_reads_the_spec() -> None:
    entry = service_entry(service("kube-dns", "kube-system", "10.43.0.10"))
    assert entry.cluster_ips == ("10.43.0.10",)
    assert not entry.headless and not entry.is_external_name
    assert entry.ports == (WEB,)
    assert service_entry(service("nginx-demo", "demo")).headless
    bare = service_entry(service("h", "demo", ports=[]))
    assert bare.ports == (PortSpec("", "", -1),)  # so address records still come out


def test_rows_join_every_slice_of_a_service() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-zq4rt", "demo", "nginx-demo", [
        endpoint("10.244.1.2", "web-demo-2")]))
    assert rows(table, "demo", "nginx-demo") == [
        ("web-demo-0", "10.244.0.39"), ("web-demo-1", "10.244.0.40"), ("web-demo-2", "10.244.1.2")]
    first = table.endpoint_rows("demo", "nginx-demo")[0]
    assert first == EndpointRow("web-demo-0", "10.244.0.39", WEB)


def test_one_row_per_address_and_port() -> None:
    table = RecordTable()
    table.apply_endpoint_slice(endpoint_slice("s", "demo", "svc", [endpoint("10.0.0.1")], ports=[
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"}]))
    assert [(r.ip, r.port.name) for r in table.endpoint_rows("demo", "svc")] == [
        ("10.0.0.1", "http"), ("10.0.0.1", "dns")]


def test_a_changed_slice_replaces_its_rows_and_reverse_entries() -> None:
    table = seed_table()
    # web-demo-0 was recreated with a new address, as in the seed.
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.50", "web-demo-0"), endpoint("10.244.0.40", "web-demo-1")]))
    assert rows(table, "demo", "nginx-demo") == [
        ("web-demo-0", "10.244.0.50"), ("web-demo-1", "10.244.0.40")]
    assert table.endpoint_owners("10.244.0.39") == []
    assert [k for k, _ in table.endpoint_owners("10.244.0.50")] == [("demo", "nginx-demo")]


def test_deleting_a_slice_drops_its_rows() -> None:
    table = seed_table()
    table.remove_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", []))
    assert rows(table, "demo", "nginx-demo") == []
    assert table.endpoint_owners("10.244.0.39") == []


def test_a_relabelled_slice_moves_to_its_new_service() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "other", [
        endpoint("10.244.0.39", "web-demo-0")]))
    assert rows(table, "demo", "nginx-demo") == []
    assert rows(table, "demo", "other") == [("web-demo-0", "10.244.0.39")]


def test_slices_without_a_service_label_are_ignored() -> None:
    table = RecordTable()
    piece = endpoint_slice("stray", "demo", "x", [endpoint("10.0.0.1")])
    piece["metadata"]["labels"] = {}
    table.apply_endpoint_slice(piece)
    assert table.endpoint_owners("10.0.0.1") == []


def test_slices_before_their_service_still_count() -> None:
    table = RecordTable()
    table.apply_endpoint_slice(endpoint_slice("s", "demo", "late", [endpoint("10.0.0.9", "a")]))
    assert rows(table, "demo", "late") == [("a", "10.0.0.9")]
    table.apply_service(service("late", "demo"))
    assert rows(table, "demo", "late") == [("a", "10.0.0.9")]


def test_publish_not_ready_toggle_rebuilds_rows() -> None:
    table = seed_table()
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0", ready=False)]))
    assert rows(table, "demo", "nginx-demo") == []
    table.apply_service(service("nginx-demo", "demo", publishNotReadyAddresses=True))
    assert rows(table, "demo", "nginx-demo") == [("web-demo-0", "10.244.0.39")]
    table.apply_service(service("nginx-demo", "demo"))
    assert rows(table, "demo", "nginx-demo") == []


def test_cluster_ip_index_follows_service_changes() -> None:
    table = seed_table()
    assert [s.name for s in table.services_with_cluster_ip("10.43.0.10")] == ["kube-dns"]
    table.apply_service(service("kube-dns", "kube-system", "10.43.0.11"))
    assert table.services_with_cluster_ip("10.43.0.10") == []
    table.remove_service(service("kube-dns", "kube-system", "10.43.0.11"))
    assert table.services_with_cluster_ip("10.43.0.11") == []
    assert table.service("kube-system", "kube-dns") is None
    assert table.services_with_cluster_ip("None") == []


def test_namespaces() -> None:
    table = RecordTable()
    table.apply_namespace(namespace("Demo"))
    assert table.has_namespace("demo")
    table.remove_namespace(namespace("demo"))
    assert not table.has_namespace("demo")


def test_pod_addresses() -> None:
    table = RecordTable()
    pod = {"metadata": {"name": "p", "namespace": "demo"},
           "status": {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}}
    table.apply_pod(pod)
    assert table.pod_namespaces("fd00::1") == {"demo"}
    pod["status"] = {"podIP": "10.0.0.2"}
    table.apply_pod(pod)
    assert table.pod_namespaces("10.0.0.1") == set()
    assert table.pod_namespaces("10.0.0.2") == {"demo"}
    table.remove_pod(pod)
    assert table.pod_namespaces("10.0.0.2") == set()


def test_serial_follows_the_clock_and_never_goes_back() -> None:
    now = [100.0]
    table = RecordTable(clock=lambda: now[0])
    now[0] = 200.0
    table.apply_namespace(namespace("demo"))
    assert table.serial == 200
    now[0] = 150.0
    table.apply_namespace(namespace("other"))
    assert table.serial == 200
