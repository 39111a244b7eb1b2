"""kubi.dns: cluster DNS for `<zone>` names, answering as CoreDNS's `kubernetes` plugin.

`ClusterDNS` keeps a record table of Services, EndpointSlices and Namespaces
current through informers and resolves dnslib messages from it; `DNSServer`
puts any such resolver on UDP and TCP; `main` runs both for `kubi dns`.
Inside: `names` (reading query names), `table` (the record table), `lookup`
(names to cluster objects), `answer` (objects to DNS responses), `upstream`
(the optional forwarder).
"""

from kubi.dns.cluster import ClusterDNS
from kubi.dns.main import main, run
from kubi.dns.server import DNSServer

__all__ = ["ClusterDNS", "DNSServer", "main", "run"]
