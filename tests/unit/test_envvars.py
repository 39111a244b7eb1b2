"""Container environment resolution: sources, precedence, expansion and errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubi.node import envvars
from kubi.node.envvars import ConfigError, expand, resolve_env


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


CONFIGMAPS: dict[tuple[str, str], dict[str, Any]] = {
    ("demo", "cm-demo-mix"): {"data": {
        "player_initial_lives": "3",
        "ui_properties_file_name": "user-interface.properties",
        "game.properties": "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n",
    }},
    ("demo", "cm-demo-all-env"): {"data": {"SPECIAL_LEVEL": "very", "SPECIAL_TYPE": "charm"}},
}
SECRETS: dict[tuple[str, str], dict[str, Any]] = {
    ("demo", "dev-db-secret"): {"data": {"username": b64("devuser"),
                                         "password": b64("S!B\\*d$zDsb=")}},
}


async def get_cm(namespace: str, name: str) -> dict[str, Any] | None:
    return CONFIGMAPS.get((namespace, name))


async def get_secret(namespace: str, name: str) -> dict[str, Any] | None:
    return SECRETS.get((namespace, name))


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "cm-demo-pod", "namespace": "demo", "uid": "u-1",
                     "labels": {"app": "web"}, "annotations": {"team": "blue"}},
        "spec": {"nodeName": "node-1", "serviceAccountName": "default", **spec},
    }


async def resolve(container: dict[str, Any], the_pod: dict[str, Any] | None = None,
                  **kw: Any) -> tuple[dict[str, str], list[envvars.Problem]]:
    the_pod = the_pod or pod(containers=[container])
    return await resolve_env(the_pod, container, lookup_configmap=get_cm,
                             lookup_secret=get_secret, node_ip="10.0.0.5",
                             pod_ip="10.42.0.7", pod_ips=["10.42.0.7"], **kw)


async def test_seed_cm_demo_pod() -> None:
    container = {
        "name": "demo",
        "env": [
            {"name": "PLAYER_INITIAL_LIVES", "valueFrom": {"configMapKeyRef": {
                "name": "cm-demo-mix", "key": "player_initial_lives"}}},
            {"name": "UI_PROPERTIES_FILE_NAME", "valueFrom": {"configMapKeyRef": {
                "name": "cm-demo-mix", "key": "ui_properties_file_name"}}},
        ],
        "envFrom": [{"configMapRef": {"name": "cm-demo-all-env"}}],
    }
    env, problems = await resolve(container, service_env={"KUBERNETES_SERVICE_HOST": "10.43.0.1"})
    assert env == {
        "SPECIAL_LEVEL": "very", "SPECIAL_TYPE": "charm", "PLAYER_INITIAL_LIVES": "3",
        "UI_PROPERTIES_FILE_NAME": "user-interface.properties",
        "KUBERNETES_SERVICE_HOST": "10.43.0.1",
    }
    assert list(env)[-1] == "KUBERNETES_SERVICE_HOST"
    assert problems == []


async def test_secret_env_from_decodes_values() -> None:
    env, _ = await resolve({"name": "c", "envFrom": [{"secretRef": {"name": "dev-db-secret"}}]})
    assert env == {"username": "devuser", "password": "S!B\\*d$zDsb="}


async def test_env_overrides_env_from_and_prefix_applies() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm-demo-all-env"}, "prefix": "P_"},
                    {"configMapRef": {"name": "cm-demo-all-env"}}],
        "env": [{"name": "SPECIAL_LEVEL", "value": "low"}],
    }
    env, _ = await resolve(container)
    assert env["P_SPECIAL_LEVEL"] == "very"
    assert env["SPECIAL_LEVEL"] == "low"
    assert env["SPECIAL_TYPE"] == "charm"


async def test_expansion_of_values() -> None:
    container = {"name": "c", "env": [
        {"name": "A", "value": "x"},
        {"name": "B", "value": "$(A)-$(LATER)-$$(A)-$(SVC)"},
        {"name": "LATER", "value": "y"},
        {"name": "EMPTY"},
    ]}
    env, _ = await resolve(container, service_env={"SVC": "s"})
    assert env["B"] == "x-$(LATER)-$(A)-s"
    assert env["EMPTY"] == ""


@pytest.mark.parametrize("text, expected", [
    ("$(A)", "1"), ("$$(A)", "$(A)"), ("$(MISSING)", "$(MISSING)"), ("$(A", "$(A"),
    ("a$", "a$"), ("$b$(A)", "$b1"), ("$$$(A)", "$1"), ("$()", "$()"),
    ("$(A)$(B)", "12"), ("é$(A)é", "é1é"),
])
def test_expand_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_expand_command_and_subpath_expr() -> None:
    container = {"command": ["sh", "-c"], "args": ["echo $(A) $(NOPE)"]}
    assert envvars.expand_command(container, {"A": "1"}) == ["sh", "-c", "echo 1 $(NOPE)"]
    assert envvars.expand_subpath_expr("logs/$(POD)", {"POD": "p"}) == "logs/p"
    with pytest.raises(ConfigError, match="missing value for EMPTY, NOPE"):
        envvars.expand_subpath_expr("$(NOPE)/$(EMPTY)", {"EMPTY": ""})


async def test_field_refs() -> None:
    def ref(path: str) -> dict[str, Any]:
        return {"name": path, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    paths = ["metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels['app']",
             "metadata.annotations['team']", "metadata.labels['none']", "spec.nodeName",
             "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
             "status.podIPs", "metadata.labels"]
    container = {"name": "c", "env": [ref(p) for p in paths]}
    the_pod = pod(containers=[container])
    env, _ = await resolve_env(the_pod, container, lookup_configmap=get_cm,
                               lookup_secret=get_secret, node_ip="10.0.0.5",
                               pod_ip="10.42.0.7", pod_ips=["fd00::7", "10.42.0.7"])
    assert [env[p] for p in paths] == [
        "cm-demo-pod", "demo", "u-1", "web", "blue", "", "node-1", "default", "10.0.0.5",
        "10.0.0.5", "10.42.0.7", "10.42.0.7,fd00::7", 'app="web"']


async def test_unsupported_field_ref_is_config_error() -> None:
    container = {"name": "c", "env": [
        {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]}
    with pytest.raises(ConfigError, match="field label not supported: spec.hostname"):
        await resolve(container)


async def test_resource_field_refs_with_divisor_and_allocatable_default() -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"},
                      "requests": {"cpu": "250m", "memory": "32Mi"}},
        "env": [
            {"name": "LIM_CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
            {"name": "LIM_CPU_M", "valueFrom": {"resourceFieldRef": {
                "resource": "limits.cpu", "divisor": "1m"}}},
            {"name": "REQ_MEM_MI", "valueFrom": {"resourceFieldRef": {
                "resource": "requests.memory", "divisor": "1Mi"}}},
            {"name": "LIM_MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
            {"name": "LIM_EPH", "valueFrom": {"resourceFieldRef": {
                "resource": "limits.ephemeral-storage", "divisor": "1Gi"}}},
            {"name": "REQ_EPH", "valueFrom": {"resourceFieldRef": {
                "resource": "requests.ephemeral-storage"}}},
            {"name": "OTHER", "valueFrom": {"resourceFieldRef": {
                "containerName": "side", "resource": "limits.cpu"}}},
        ],
    }
    side = {"name": "side", "resources": {"limits": {"cpu": "2"}}}
    the_pod = pod(containers=[container, side])
    env, _ = await resolve(container, the_pod,
                           node_allocatable={"cpu": "4", "memory": "8Gi",
                                             "ephemeral-storage": "20Gi"})
    assert env["LIM_CPU"] == "1"
    assert env["LIM_CPU_M"] == "500"
    assert env["REQ_MEM_MI"] == "32"
    assert env["LIM_MEM"] == str(64 * 2**20)
    assert env["LIM_EPH"] == "20"
    assert env["REQ_EPH"] == "0"
    assert env["OTHER"] == "2"


async def test_missing_objects_and_keys() -> None:
    async def run(ref_field: str, name: str, key: str = "k", optional: bool = False) -> Any:
        container = {"name": "c", "env": [{"name": "V", "valueFrom": {ref_field: {
            "name": name, "key": key, "optional": optional}}}]}
        return await resolve(container)

    with pytest.raises(ConfigError, match='^configmap "x" not found$'):
        await run("configMapKeyRef", "x")
    with pytest.raises(ConfigError, match="^couldn't find key k in ConfigMap demo/cm-demo-mix$"):
        await run("configMapKeyRef", "cm-demo-mix")
    with pytest.raises(ConfigError, match='^secret "x" not found$'):
        await run("secretKeyRef", "x")
    with pytest.raises(ConfigError, match="^couldn't find key k in Secret demo/dev-db-secret$"):
        await run("secretKeyRef", "dev-db-secret")
    env, _ = await run("configMapKeyRef", "x", optional=True)
    assert "V" not in env
    env, _ = await run("secretKeyRef", "dev-db-secret", optional=True)
    assert "V" not in env
    with pytest.raises(ConfigError, match='^configmap "gone" not found$'):
        await resolve({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]})
    env, _ = await resolve({"name": "c", "envFrom": [
        {"secretRef": {"name": "gone", "optional": True}}]})
    assert env == {}
    assert ConfigError("x").reason == "CreateContainerConfigError"


async def test_invalid_env_from_keys_are_skipped_and_reported() -> None:
    CONFIGMAPS[("demo", "odd")] = {"data": {"ok": "1", "bad=key": "2", "also=bad": "3"}}
    try:
        env, problems = await resolve({"name": "c", "envFrom": [{"configMapRef": {"name": "odd"}}]})
    finally:
        del CONFIGMAPS[("demo", "odd")]
    assert env == {"ok": "1"}
    assert problems == [envvars.Problem(
        "InvalidEnvironmentVariableNames",
        "Keys [also=bad, bad=key] from the EnvFrom configMap demo/odd were skipped since they "
        "are considered invalid environment variable names.")]


async def test_lookups_are_made_once_per_object() -> None:
    calls: list[str] = []

    async def counting(namespace: str, name: str) -> dict[str, Any] | None:
        calls.append(name)
        return await get_cm(namespace, name)

    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cm-demo-mix"}}], "env": [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-demo-mix",
                                                        "key": "player_initial_lives"}}}]}
    await resolve_env(pod(), container, lookup_configmap=counting, lookup_secret=get_secret,
                      node_ip="", pod_ip="", pod_ips=[])
    assert calls == ["cm-demo-mix"]


def test_service_environment() -> None:
    services = [
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.43.0.1", "ports": [{"name": "https", "port": 443,
                                                      "protocol": "TCP"}]}},
        {"metadata": {"name": "my-db", "namespace": "demo"},
         "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 5432}]}},
        {"metadata": {"name": "headless", "namespace": "demo"},
         "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
        {"metadata": {"name": "elsewhere", "namespace": "other"},
         "spec": {"clusterIP": "10.43.0.8", "ports": [{"port": 80}]}},
    ]
    env = envvars.service_environment(services, "demo")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.43.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.43.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_PROTO"] == "tcp"
    assert env["KUBERNETES_PORT_443_TCP_PORT"] == "443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.43.0.1"
    assert env["MY_DB_SERVICE_HOST"] == "10.43.0.9"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in env)
    no_links = envvars.service_environment(services, "demo", enable_service_links=False)
    assert set(no_links) == {k for k in env if k.startswith("KUBERNETES")}
    v6 = envvars.service_environment([{"metadata": {"name": "s", "namespace": "n"},
                                       "spec": {"clusterIP": "fd00::1", "ports": [{"port": 80}]}}],
                                     "n")
    assert v6["S_PORT"] == "tcp://[fd00::1]:80"
