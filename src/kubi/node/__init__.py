"""The node side of kubi: what a kubelet does, for simulated and (later) real nodes.

`status` builds pod statuses the way the kubelet reports them (pure functions
on plain dicts), `nodestatus` builds Node objects and their conditions,
`heartbeat` registers a Node and keeps its Lease and status fresh,
`status_manager` writes pod statuses through `pods/status` with bounded
concurrency, and `sim` simulates whole nodes on top of those pieces.
"""
