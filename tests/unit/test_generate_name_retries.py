"""Creates with generateName: a generated name that is taken already is made
again, up to eight attempts in all (upstream's API server since 1.31); a
name given by the client is never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubi.api import meta
from kubi.api.errors import StatusError
from kubi.client.client import Resource
from tests.unit.apiserver_fixtures import admin_client

CONFIGMAPS = Resource("", "v1", "configmaps", True, "ConfigMap")


def suffixes(monkeypatch: pytest.MonkeyPatch, values: list[str]) -> list[str]:
    queue = iter(values)
    used: list[str] = []

    def next_suffix() -> str:
        used.append(next(queue))
        return used[-1]

    monkeypatch.setattr(meta, "random_suffix", next_suffix)
    return used


def generated(base: str = "cm-") -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": base}}


async def test_a_taken_generated_name_is_made_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with admin_client(tmp_path) as api:
        used = suffixes(monkeypatch, ["aaaaa", "aaaaa", "aaaaa", "bbbbb"])
        first = await api.create(CONFIGMAPS, generated(), "default")
        second = await api.create(CONFIGMAPS, generated(), "default")
        assert first["metadata"]["name"] == "cm-aaaaa"
        assert second["metadata"]["name"] == "cm-bbbbb"
        assert second["metadata"]["generateName"] == "cm-"
        assert used == ["aaaaa", "aaaaa", "aaaaa", "bbbbb"]


async def test_eight_taken_names_are_a_conflict(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async with admin_client(tmp_path) as api:
        used = suffixes(monkeypatch, ["zzzzz"] * 9)
        await api.create(CONFIGMAPS, generated(), "default")
        with pytest.raises(StatusError) as taken:
            await api.create(CONFIGMAPS, generated(), "default")
        assert taken.value.code == 409
        assert taken.value.reason == "AlreadyExists"
        assert len(used) == 9  # one for the first create, eight attempts for the second


async def test_a_given_name_is_not_replaced(tmp_path: Path) -> None:
    async with admin_client(tmp_path) as api:
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "fixed", "generateName": "cm-"}}
        await api.create(CONFIGMAPS, body, "default")
        with pytest.raises(StatusError) as taken:
            await api.create(CONFIGMAPS, body, "default")
        assert taken.value.code == 409
