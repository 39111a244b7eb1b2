"""Admin kubeconfig: a client certificate for `kubernetes-admin` in
`system:masters`, with the CA and the key embedded so the file stands alone."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from kubi.apiserver.pki import PKI

CONTEXT = "kubi"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


UNIX_SOCKET_EXTENSION = "kubi.dev/unix-socket"


def admin_kubeconfig(pki: PKI, server: str) -> dict:
    return kubeconfig_for(pki, server, "admin", "kubernetes-admin", ("system:masters",))


def kubeconfig_for(pki: PKI, server: str, cert_name: str, user: str,
                   groups: tuple[str, ...] = (), *, unix_socket: Path | None = None) -> dict:
    """A kubeconfig authenticating as `user` in `groups` by a client certificate.

    With `unix_socket`, the cluster also names the API server's local socket
    in an extension (`kubi.dev/unix-socket`) that kubi's own client prefers
    to TLS on loopback; kubectl ignores it and uses `server`.
    """
    client = pki.issue(cert_name, common_name=user, organizations=groups)
    cluster: dict = {
        "server": server,
        "certificate-authority-data": _b64(pki.ca.cert_pem()),
    }
    if unix_socket is not None:
        cluster["extensions"] = [{"name": UNIX_SOCKET_EXTENSION,
                                  "extension": {"path": str(unix_socket)}}]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": "kubi-admin", "user": {
            "client-certificate-data": _b64(client.cert_pem()),
            "client-key-data": _b64(client.key_pem()),
        }}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "kubi-admin"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_admin_kubeconfig(pki: PKI, path: Path, server: str) -> None:
    write_kubeconfig(admin_kubeconfig(pki, server), path)


def write_kubeconfig(config: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, sort_keys=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
