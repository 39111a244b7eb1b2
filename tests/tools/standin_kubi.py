"""A minimal stand-in for `kubi up`, used only to test the end-to-end harness itself.

It honours the same command-line contract (`up --data-dir D --port P --kubeconfig
F`): it makes a throwaway CA and serving certificate for 127.0.0.1, writes the CA
to `D/pki/ca.crt` and an admin kubeconfig (context `kubi`) to F, then serves
`/readyz`, `/livez` and `/version` over HTTPS until SIGTERM or SIGINT, when it
exits 0. `--fail` makes it exit 3 at once, to exercise start-up failure reports;
`--leave-child` starts a `sleep` it never reaps, to exercise orphan clean-up.
Nothing else of the Kubernetes API is served.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import json
import signal
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VERSION_INFO = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-standin",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
ADMIN_TOKEN = "standin-admin-token"


def _make_pki(pki_dir: Path) -> tuple[bytes, Path, Path]:
    """Write a CA and a 127.0.0.1 serving pair; return the CA PEM and pair paths."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "standin")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    (pki_dir / "ca.crt").write_bytes(ca_pem)
    cert_path, key_path = pki_dir / "serving.crt", pki_dir / "serving.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_path, key_path


def _write_kubeconfig(path: Path, *, port: int, ca_pem: bytes) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubi",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}}],
        "contexts": [{"name": "kubi", "context": {"cluster": "kubi", "user": "admin"}}],
        "current-context": "kubi",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON is valid YAML, and kubeconfig loaders accept it.
    path.write_text(json.dumps(config, indent=2))


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/readyz", "/livez", "/healthz"):
            self._reply(200, "text/plain", b"ok")
        elif path == "/version":
            self._reply(200, "application/json", json.dumps(VERSION_INFO).encode())
        else:
            self._reply(404, "text/plain", b"not served by the stand-in")

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print(f"standin: {self.command} {self.path}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="standin-kubi")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kubeconfig", type=Path)
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--leave-child", action="store_true")
    args = parser.parse_args(argv)
    if args.fail:
        print("standin: failing on purpose", file=sys.stderr, flush=True)
        return 3
    args.data_dir.mkdir(parents=True, exist_ok=True)
    if args.leave_child:
        child = subprocess.Popen(["sleep", "600"])
        (args.data_dir / "child.pid").write_text(str(child.pid))
    ca_pem, cert_path, key_path = _make_pki(args.data_dir / "pki")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _write_kubeconfig(
        args.kubeconfig or args.data_dir / "kubeconfig.yaml", port=args.port, ca_pem=ca_pem
    )

    def shut_down(signum: int, frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so call it off the main thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    print(f"standin: serving on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    print("standin: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
