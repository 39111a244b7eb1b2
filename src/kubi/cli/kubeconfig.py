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


def admin_kubeconfig(pki: PKI, server: str) -> dict:
    client = pki.issue("admin", common_name="kubernetes-admin", organizations=("system:masters",))
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server,
            "certificate-authority-data": _b64(pki.ca.cert_pem()),
        }}],
        "users": [{"name": "kubi-admin", "user": {
            "client-certificate-data": _b64(client.cert_pem()),
            "client-key-data": _b64(client.key_pem()),
        }}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "kubi-admin"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_admin_kubeconfig(pki: PKI, path: Path, server: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(admin_kubeconfig(pki, server), sort_keys=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
