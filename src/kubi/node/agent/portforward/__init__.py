"""Port forwarding into a pod's network namespace, as the kubelet serves it.

`pairs` speaks kubectl's protocol (SPDY streams in error/data pairs),
`channels` the WebSocket channel protocol other clients use, and `websocket`
picks between them for one upgraded request. `connect(port)` is the
runtime's `port_forward` for the pod's sandbox: a connection to that port on
the pod's loopback.
"""

from kubi.node.agent.portforward.channels import V4_BASE64, V4_BINARY, parse_ports
from kubi.node.agent.portforward.pairs import (
    PROTOCOL,
    Connect,
    Connection,
    PortForwarder,
    check_stream,
    describe,
    forward_error,
    request_id,
    serve,
)
from kubi.node.agent.portforward.websocket import (
    TUNNEL_PROTOCOL,
    WebSocketPipe,
    serve_websocket,
)

__all__ = [
    "PROTOCOL", "TUNNEL_PROTOCOL", "V4_BASE64", "V4_BINARY", "Connect", "Connection",
    "PortForwarder", "WebSocketPipe", "check_stream", "describe", "forward_error",
    "parse_ports", "request_id", "serve", "serve_websocket",
]
