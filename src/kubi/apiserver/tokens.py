"""Service account tokens: the `serviceaccounts/token` subresource (TokenRequest)
and the authenticator that accepts the tokens it issues.

Tokens are JWTs signed with ES256 by a key kept in the data dir's PKI, with
upstream's claims: issuer and audience `https://kubernetes.default.svc.cluster.local`,
subject `system:serviceaccount:<namespace>:<name>`, and the `kubernetes.io`
claim naming the namespace, the ServiceAccount (and its uid) and, when the
request binds the token to a pod, that pod. A token authenticates while it has
not expired and while the ServiceAccount it names (same uid) still exists.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kubi.api import catalog, meta
from kubi.api.errors import BadRequest

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 48 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """The service account signing key (made on first start, kept on disk)."""

    def __init__(self, pki_dir: Path) -> None:
        path = pki_dir / "sa.key"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            path.write_bytes(pem)
            path.chmod(0o600)
        self._key = key
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = _b64(hashlib.sha256(der).digest())

    def sign(self, claims: dict) -> str:
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> dict | None:
        """The claims of a token this signer issued and that has not expired."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            if header.get("alg") != "ES256" or header.get("kid") != self.kid:
                return None
            raw = _unb64(parts[2])
            if len(raw) != 64:
                return None
            signature = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                             int.from_bytes(raw[32:], "big"))
            self._key.public_key().verify(signature, f"{parts[0]}.{parts[1]}".encode(),
                                          ec.ECDSA(hashes.SHA256()))
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        if claims.get("exp", 0) < time.time():
            return None
        return claims


def issue_token(signer: TokenSigner, registry, namespace: str, name: str,
                request: dict) -> dict:
    """Answer a TokenRequest for ServiceAccount `namespace/name`."""
    sa_rt = catalog.lookup("", "v1", "serviceaccounts")
    account = registry.get(sa_rt, namespace, name).obj
    spec = request.get("spec") or {}
    expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
    if not isinstance(expiration, int) or expiration < MIN_EXPIRATION:
        raise BadRequest(f"spec.expirationSeconds: Invalid value: {expiration}: may not specify "
                         f"a duration less than {MIN_EXPIRATION} seconds")
    expiration = min(expiration, MAX_EXPIRATION)
    audiences = spec.get("audiences") or [ISSUER]
    now = int(time.time())
    private: dict = {
        "namespace": namespace,
        "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]},
    }
    bound = spec.get("boundObjectRef")
    if bound and bound.get("kind") == "Pod":
        private["pod"] = {"name": bound.get("name", ""), "uid": bound.get("uid", "")}
    claims = {
        "aud": audiences,
        "exp": now + expiration,
        "iat": now,
        "iss": ISSUER,
        "jti": meta.new_uid(),
        "kubernetes.io": private,
        "nbf": now,
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": meta.now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": expiration,
                 "boundObjectRef": bound},
        "status": {"token": signer.sign(claims),
                   "expirationTimestamp": meta.format_time(now + expiration)},
    }


def authenticate(signer: TokenSigner, registry, token: str):
    """The user a service account token stands for, or None."""
    from kubi.apiserver.server import User

    claims = signer.verify(token)
    if claims is None:
        return None
    private = claims.get("kubernetes.io") or {}
    namespace = private.get("namespace", "")
    account = (private.get("serviceaccount") or {})
    sa_rt = catalog.lookup("", "v1", "serviceaccounts")
    found = registry.find(sa_rt, namespace, account.get("name", ""))
    if found is None or found.obj["metadata"].get("uid") != account.get("uid"):
        return None
    return User(f"system:serviceaccount:{namespace}:{account.get('name')}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                 "system:authenticated"))
