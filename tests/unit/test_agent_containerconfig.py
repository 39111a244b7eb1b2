"""Container configs: argv rules, labels, limits, users and the environment seam."""

from __future__ import annotations

from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.node.agent.containerconfig import (
    LABEL_CONTAINER_HASH,
    LABEL_POD_UID,
    ContainerConfigError,
    api_env_resolver,
    build_container_config,
    container_argv,
    spec_hash,
)

POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
       "spec": {"terminationGracePeriodSeconds": 5,
                "securityContext": {"runAsUser": 1000, "runAsGroup": 100}}}


def test_argv_rules() -> None:
    env = {"NAME": "kubi"}
    assert container_argv({"command": ["echo"], "args": ["$(NAME)", "$$(NAME)"]}, env) == \
        ["echo", "kubi", "$(NAME)"]
    assert container_argv({"args": ["sh", "-c", "true"]}, env) == ["sh", "-c", "true"]
    assert container_argv({"command": ["$(MISSING)"]}, env) == ["$(MISSING)"]
    with pytest.raises(ContainerConfigError) as info:
        container_argv({"name": "web", "image": "nginx"}, env)
    assert info.value.reason == "CreateContainerError"
    assert 'container "web" has no command' in str(info.value)


def test_build_container_config() -> None:
    container = {"name": "c", "image": "busybox:1.36", "command": ["sleep", "1d"],
                 "workingDir": "/tmp", "tty": True, "stdin": True, "stdinOnce": True,
                 "securityContext": {"runAsUser": 0},
                 "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}
    config = build_container_config(POD, container, env={"A": "1"}, attempt=2,
                                    log_path="/l/c/2.log", init=False)
    assert config.argv == ["sleep", "1d"] and config.env == {"A": "1"}
    assert (config.run_as_user, config.run_as_group) == (0, 100)
    assert (config.memory_limit_bytes, config.cpu_limit_millis) == (64 * 1024 * 1024, 250)
    assert (config.tty, config.stdin, config.stdin_once, config.attempt) == (True, True, True, 2)
    assert config.labels[LABEL_POD_UID] == "u1"
    assert config.labels[LABEL_CONTAINER_HASH] == spec_hash(container)
    assert config.labels["io.kubernetes.pod.terminationGracePeriod"] == "5"


def test_spec_hash_ignores_resources() -> None:
    base = {"name": "c", "image": "a", "command": ["x"]}
    assert spec_hash(base) == spec_hash({**base, "resources": {"limits": {"cpu": "1"}}})
    assert spec_hash(base) != spec_hash({**base, "image": "b"})


class FakeClient:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects

    async def get(self, res: Any, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj = self.objects.get((res.plural, name))
        if obj is None:
            raise StatusError(404, "NotFound", f'{res.plural} "{name}" not found')
        return obj


async def test_api_env_resolver_reads_configmaps_and_fields() -> None:
    client = FakeClient({("configmaps", "cfg"): {"data": {"MODE": "fast"}}})
    services = [{"metadata": {"name": "kubernetes", "namespace": "default"},
                 "spec": {"clusterIP": "10.43.0.1", "ports": [{"port": 443}]}}]
    resolve = api_env_resolver(client, services=lambda: services)  # type: ignore[arg-type]
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}],
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "GREETING", "value": "mode=$(MODE)"}]}
    env, warnings = await resolve(POD, container, "10.42.0.5", "192.0.2.1")
    assert env["MODE"] == "fast" and env["POD"] == "p" and env["IP"] == "10.42.0.5"
    assert env["GREETING"] == "mode=fast"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert warnings == []


async def test_api_env_resolver_missing_secret_is_a_config_error() -> None:
    resolve = api_env_resolver(FakeClient({}))  # type: ignore[arg-type]
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {
        "secretKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(Exception) as info:
        await resolve(POD, container, "", "192.0.2.1")
    assert info.value.reason == "CreateContainerConfigError"  # type: ignore[attr-defined]
    assert str(info.value) == 'secret "nope" not found'
