"""Service account tokens: issue, verify, expiry, and binding to the account."""

from __future__ import annotations

import time

import pytest

from kubi.api import catalog
from kubi.api.errors import BadRequest
from kubi.apiserver.rest import DeleteOptions, WriteOptions
from kubi.apiserver.tokens import ISSUER, TokenSigner, authenticate, issue_token
from tests.unit.apiserver_fixtures import memory_registry

SA = catalog.lookup("", "v1", "serviceaccounts")


@pytest.fixture
async def registry():
    async with memory_registry() as reg:
        await reg.create(SA, "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                         "metadata": {"name": "robot"}},
                         WriteOptions(field_manager="test"))
        yield reg


async def test_issued_token_authenticates_as_the_service_account(tmp_path, registry):
    signer = TokenSigner(tmp_path)
    answer = issue_token(signer, registry, "default", "robot", {"spec": {}})
    assert answer["kind"] == "TokenRequest" and answer["spec"]["audiences"] == [ISSUER]
    user = authenticate(signer, registry, answer["status"]["token"])
    assert user is not None
    assert user.name == "system:serviceaccount:default:robot"
    assert "system:serviceaccounts:default" in user.groups


async def test_the_key_survives_a_restart_and_tampering_is_refused(tmp_path, registry):
    token = issue_token(TokenSigner(tmp_path), registry, "default", "robot", {})["status"]["token"]
    again = TokenSigner(tmp_path)
    assert authenticate(again, registry, token) is not None
    head, body, sig = token.split(".")
    assert authenticate(again, registry, f"{head}.{body}x.{sig}") is None
    (tmp_path / "other").mkdir()
    assert authenticate(TokenSigner(tmp_path / "other"), registry, token) is None


async def test_token_dies_with_its_service_account(tmp_path, registry):
    signer = TokenSigner(tmp_path)
    token = issue_token(signer, registry, "default", "robot", {})["status"]["token"]
    await registry.delete(SA, "default", "robot", DeleteOptions())
    assert authenticate(signer, registry, token) is None


async def test_expired_and_too_short_tokens(tmp_path, registry, monkeypatch):
    signer = TokenSigner(tmp_path)
    with pytest.raises(BadRequest):
        issue_token(signer, registry, "default", "robot", {"spec": {"expirationSeconds": 10}})
    token = issue_token(signer, registry, "default", "robot",
                        {"spec": {"expirationSeconds": 600}})["status"]["token"]
    later = time.time() + 601
    monkeypatch.setattr(time, "time", lambda: later)
    assert authenticate(signer, registry, token) is None
