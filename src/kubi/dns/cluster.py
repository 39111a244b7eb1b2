"""ClusterDNS: the record table fed by informers, and the resolver on top of it.

Informers on Services, EndpointSlices and Namespaces (and Pods, when pod
names are verified) hand each event to the `RecordTable`, which re-derives
only what the object touches. `resolve(request)` answers from the table
through `Authority` and does the little I/O an answer may need: forwarding
names outside the cluster (and reverse names nobody in the cluster owns) to
the upstream, and chasing ExternalName targets there. With no upstream,
which is the default, nothing leaves the process: outside names are REFUSED.

Answers carry a TTL of 5 seconds. That is the `kubernetes` plugin's own
default; kubeadm's Corefile raises it to 30, but five keeps clients close
to the cluster's state while pods come and go. Address records of one name
are shuffled per answer, as the `loadbalance` plugin of that Corefile does.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from kubi.client.client import Client, Resource
from kubi.client.informer import Informer
from kubi.dns.answer import Authority, response_to
from kubi.dns.lookup import Lookup, PodMode
from kubi.dns.table import RecordTable
from kubi.dns.upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

SERVICES = Resource("", "v1", "services", True, "Service")
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
PODS = Resource("", "v1", "pods", True, "Pod")

DEFAULT_TTL = 5
SYNC_TIMEOUT = 5.0  # as CoreDNS, start serving (SERVFAIL for misses) if the API is slow


class ClusterDNS:
    def __init__(self, client: Client | None, *, domain: str = "cluster.local",
                 upstream: str | None = None, ttl: int = DEFAULT_TTL,
                 pod_mode: PodMode = "insecure", nameservers: tuple[str, ...] = (),
                 round_robin: bool = True, table: RecordTable | None = None) -> None:
        self.client = client
        self.domain = domain.lower().strip(".")
        self.upstream = Upstream(upstream) if upstream else None
        self.round_robin = round_robin
        self.pod_mode = pod_mode
        self.table = table if table is not None else RecordTable()
        self.lookup = Lookup(self.table, domain=self.domain, pod_mode=pod_mode,
                             nameservers=tuple(nameservers))
        self.authority = Authority(self.lookup, ttl=ttl, synced=lambda: self.synced)
        self._informers: list[Informer] = []
        self._ready = client is None  # a table fed by hand is as complete as it gets

    @property
    def synced(self) -> bool:
        return self._ready or (bool(self._informers)
                               and all(i.synced.is_set() for i in self._informers))

    # ---- lifecycle

    async def start(self, sync_timeout: float = SYNC_TIMEOUT) -> None:
        if self.client is None:
            raise RuntimeError("ClusterDNS without a client has nothing to watch")
        t = self.table
        self._watch(SERVICES, t.apply_service, t.remove_service)
        self._watch(ENDPOINT_SLICES, t.apply_endpoint_slice, t.remove_endpoint_slice)
        self._watch(NAMESPACES, t.apply_namespace, t.remove_namespace)
        if self.pod_mode == "verified":
            self._watch(PODS, t.apply_pod, t.remove_pod)
        for informer in self._informers:
            informer.start()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(i.synced.wait() for i in self._informers)), sync_timeout)
        except TimeoutError:
            log.warning("cluster DNS: serving before the API caches synced")

    def _watch(self, resource: Resource, apply: Callable[[dict[str, Any]], None],
               remove: Callable[[dict[str, Any]], None]) -> None:
        assert self.client is not None
        informer = Informer(self.client, resource)
        informer.on_add(apply)
        informer.on_update(lambda old, new: apply(new))
        informer.on_delete(remove)
        self._informers.append(informer)

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()
        self._informers.clear()

    # ---- answering

    async def resolve(self, request: DNSRecord, *, tcp: bool = False) -> DNSRecord:
        reply = self.authority.answer(request)
        if reply.outside or (reply.name_error and reply.reverse_zone):
            if self.upstream is not None:
                return await self._forward(request, tcp)
            return reply.message
        message = reply.message
        if reply.external and self.upstream is not None:
            await self._chase(message, reply.external, request.q.qtype)
        if self.round_robin and message.header.rcode == RCODE.NOERROR:
            shuffle_addresses(message)
        return message

    async def _forward(self, request: DNSRecord, tcp: bool) -> DNSRecord:
        assert self.upstream is not None
        try:
            return await self.upstream.query(request, tcp=tcp)
        except UpstreamError as err:
            log.debug("cluster DNS: forwarding failed: %s", err)
            return response_to(request, RCODE.SERVFAIL, aa=False)

    async def _chase(self, message: DNSRecord, targets: list[str], qtype: int) -> None:
        assert self.upstream is not None
        for target in dict.fromkeys(targets):
            try:
                answer = await self.upstream.query(DNSRecord.question(target, QTYPE[qtype]))
            except UpstreamError as err:
                log.debug("cluster DNS: resolving %s upstream failed: %s", target, err)
                continue
            for rr in answer.rr:
                message.add_answer(rr)


def shuffle_addresses(message: DNSRecord) -> None:
    """Shuffle the A/AAAA answers, keeping CNAMEs first and everything else after."""
    addresses = [rr for rr in message.rr if rr.rtype in (QTYPE.A, QTYPE.AAAA)]
    if len(addresses) < 2:
        return
    random.shuffle(addresses)
    aliases = [rr for rr in message.rr if rr.rtype == QTYPE.CNAME]
    rest = [rr for rr in message.rr if rr.rtype not in (QTYPE.A, QTYPE.AAAA, QTYPE.CNAME)]
    message.rr = aliases + addresses + rest
