"""The node agent: what the kubelet does, for real nodes.

`Agent` (agent.py) registers the Node (node.py, machine.py), keeps its Lease
and status fresh, runs one `PodWorker` (worker.py, containers.py) per pod
bound to the node, wakes workers on runtime changes (pleg.py) and serves
logs, exec and attach to the API server (server.py, endpoints.py, tls.py).
The decisions are pure and live apart: what to start and kill (actions.py),
the status to report (podstatus.py), back-off (backoff.py), probes
(probes.py, handlers.py), DNS files (dnsfiles.py), container configs
(containerconfig.py), log reading (logs.py) and the WebSocket stream
protocol (streams.py). Pods' volumes are `NodeVolumes` (volumes.py), which
watches the ConfigMaps and Secrets they use (watched.py), requests service
account tokens (tokens.py) and resolves imagePullSecrets (pullsecrets.py).
`main(kubeconfig, node_name, data_dir)` runs `kubi agent` (main.py).
"""

from kubi.node.agent.agent import Agent, RuntimeFactory
from kubi.node.agent.main import main, run

__all__ = ["Agent", "RuntimeFactory", "main", "run"]
