"""TLS for the agent's endpoint: only the API server may call it.

The endpoint serves with a certificate given as files (or, when none is
given, a self-signed one made once under the data directory, as a kubelet
without a serving certificate does) and requires a client certificate signed
by the cluster CA. The CA is a file, or taken from the kubeconfig the agent
joins with. `client_identity` reads the verified peer's CN and O, which the
server then checks against the names allowed to call it.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

API_SERVER_CLIENT = "kube-apiserver-kubelet-client"
_VALIDITY = dt.timedelta(days=365)


def server_context(cert: str | Path, key: str | Path, client_ca: str | Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_identity(peercert: dict[str, Any] | None) -> tuple[str, list[str]]:
    """(CN, O entries) of a verified peer certificate as `ssl` reports it."""
    if not peercert:
        return "", []
    common_name, orgs = "", []
    for rdn in peercert.get("subject") or ():
        for key, value in rdn:
            if key == "commonName":
                common_name = value
            elif key == "organizationName":
                orgs.append(value)
    return common_name, orgs


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def ensure_self_signed(directory: Path, node_name: str, addresses: list[str]) -> tuple[Path, Path]:
    """A serving certificate for this node under `directory`, made once."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = directory / "agent.crt", directory / "agent.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@kubi-agent")])
    sans: list[x509.GeneralName] = [x509.DNSName(node_name)]
    for address in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            continue
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def ca_from_kubeconfig(kubeconfig: str | Path, directory: Path) -> Path:
    """The cluster CA named by a kubeconfig, as a file under `directory`."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    context_name = doc.get("current-context")
    context = next(c["context"] for c in doc["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    if cluster.get("certificate-authority-data"):
        data = base64.b64decode(cluster["certificate-authority-data"])
    elif cluster.get("certificate-authority"):
        data = (Path(kubeconfig).parent / cluster["certificate-authority"]).read_bytes()
    else:
        raise ValueError(f"{kubeconfig} names no certificate authority")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "client-ca.crt"
    path.write_bytes(data)
    return path
