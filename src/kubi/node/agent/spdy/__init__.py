"""SPDY/3.1, the stream multiplexing kubectl port-forward speaks.

`frames` turns bytes into frames and back (with the header-block zlib state);
`session` is the server side of one connection: it accepts the streams the
client opens and carries each stream's bytes both ways. The session runs over
any `Pipe`, so the same code serves a raw upgraded connection and SPDY
tunnelled through WebSocket binary messages.
"""

from kubi.node.agent.spdy.frames import Headers, ProtocolError
from kubi.node.agent.spdy.session import Pipe, Session, Stream, StreamClosed

__all__ = ["Headers", "Pipe", "ProtocolError", "Session", "Stream", "StreamClosed"]
