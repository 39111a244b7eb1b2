"""The seed's configuration chapter: ConfigMaps and Secrets through the real kubectl.

The seed's manifests (examples/seed/) go into namespace `demo` once per module.
The `kubectl create configmap|secret` generators, which POST protobuf bodies,
run once per supported kubectl version, each version in its own namespace so
the runs do not collide. Secret values are compared to the expected values but
never printed by the assertions' own messages beyond what kubectl shows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster
from tests.e2e.tables import by_name, columns

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
Kubectl = partial[CompletedProcess[str]]

DOCKER_CONFIG = {
    "auths": {
        "yourprivateregistry.com": {
            "username": "allen",
            "password": "mypassw0rd",
            "email": "allen@example.com",
            "auth": "YWxsZW46bXlwYXNzdzByZA==",
        }
    }
}
# The seed's password, a shell-quoted literal with a backslash in it.
SEED_PASSWORD = "S!B\\*d$zDsb="


@pytest.fixture(scope="module")
def demo(cluster: Cluster) -> str:
    cluster.kubectl("create", "namespace", "demo")
    return "demo"


@pytest.fixture
def namespace(kubectl: Kubectl, kubectl_version: str, request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own, distinct per kubectl version."""
    name = f"{request.node.originalname.removeprefix('test_')[:40]}-{kubectl_version}"
    name = name.replace("_", "-").replace(".", "-")
    kubectl("create", "namespace", name)
    return name


def get_json(kubectl: Callable[..., CompletedProcess[str]], *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def managers(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(entry["manager"], entry["operation"]) for entry in obj["metadata"]["managedFields"]}


# -- ConfigMaps from the seed's manifests --------------------------------------------------


def test_seed_configmaps_are_created_and_listed(cluster: Cluster, demo: str) -> None:
    for manifest, name in (
        ("cm-demo-mix.yaml", "cm-demo-mix"),
        ("cm-demo-all-env.yaml", "cm-demo-all-env"),
    ):
        created = cluster.kubectl("create", "-f", str(SEED / manifest))
        assert created.stdout.strip() == f"configmap/{name} created"

    listing = cluster.kubectl("get", "cm", "-n", demo).stdout
    assert columns(listing) == ["NAME", "DATA", "AGE"]
    table = by_name(listing)
    assert table["cm-demo-all-env"]["DATA"] == "2"
    assert table["cm-demo-mix"]["DATA"] == "4"

    # What is stored is exactly the manifest's data, multi-line values included.
    for manifest, name in (
        ("cm-demo-mix.yaml", "cm-demo-mix"),
        ("cm-demo-all-env.yaml", "cm-demo-all-env"),
    ):
        expected = yaml.safe_load((SEED / manifest).read_text())["data"]
        assert get_json(cluster.kubectl, "cm", name, "-n", demo)["data"] == expected


def test_seed_configmaps_are_described(cluster: Cluster, demo: str) -> None:
    all_env = cluster.kubectl("describe", "cm", "cm-demo-all-env", "-n", demo).stdout
    for line in (
        "Name:         cm-demo-all-env",
        "Namespace:    demo",
        "Labels:       <none>",
        "Annotations:  <none>",
    ):
        assert line in all_env.splitlines()
    assert "Data\n====\n" in all_env
    assert "SPECIAL_LEVEL:\n----\nvery\n" in all_env
    assert "SPECIAL_TYPE:\n----\ncharm\n" in all_env
    assert "Events:  <none>" in all_env

    mix = cluster.kubectl("describe", "cm", "cm-demo-mix", "-n", demo).stdout
    assert "player_initial_lives:\n----\n3\n" in mix
    assert "ui_properties_file_name:\n----\nuser-interface.properties\n" in mix
    assert "game.properties:\n----\nenemy.types=aliens,monsters\nplayer.maximum-lives=5\n" in mix
    assert (
        "user-interface.properties:\n----\n"
        "color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n"
    ) in mix


def test_seed_pod_consuming_configmaps_is_stored(cluster: Cluster, demo: str) -> None:
    created = cluster.kubectl("create", "-f", str(SEED / "cm-demo-pod.yaml"))
    assert created.stdout.strip() == "pod/cm-demo-pod created"

    spec = get_json(cluster.kubectl, "pod", "cm-demo-pod", "-n", demo)["spec"]
    container = spec["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": "cm-demo-all-env"}}]
    assert container["env"][0]["valueFrom"]["configMapKeyRef"] == {
        "name": "cm-demo-mix",
        "key": "player_initial_lives",
    }
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    # The API server defaults the projected files' mode to 0644.
    assert volumes["full-config"]["configMap"] == {"name": "cm-demo-mix", "defaultMode": 420}
    assert volumes["part-config"]["configMap"]["items"] == [
        {"key": "game.properties", "path": "properties"}
    ]


# -- ConfigMaps from the kubectl generator ---------------------------------------------------


@pytest.mark.kubectl_skew
def test_create_configmap_from_literals_files_and_directory(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    config_dir = tmp_path / "configure-pod-container"
    config_dir.mkdir()
    (config_dir / "game.properties").write_text("enemies=aliens\nlives=3\n")
    (config_dir / "ui.properties").write_text("color.good=purple\nhow.nice.to.look=fairlyNice\n")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xff\xfe binary")

    # The generators POST protobuf bodies; -v=8 shows that this path is the one tested.
    literal = kubectl(
        "create",
        "configmap",
        "special-config",
        "-n",
        namespace,
        "--from-literal=special.how=very",
        "--from-literal=special.type=charm",
        "-v=8",
    )
    assert literal.stdout.strip() == "configmap/special-config created"
    assert "Content-Type: application/vnd.kubernetes.protobuf" in literal.stderr
    from_dir = kubectl(
        "create", "configmap", "game-config", "-n", namespace, f"--from-file={config_dir}"
    )
    assert from_dir.stdout.strip() == "configmap/game-config created"
    from_files = kubectl(
        "create",
        "configmap",
        "game-config-2",
        "-n",
        namespace,
        f"--from-file={config_dir / 'game.properties'}",
        f"--from-file=renamed.properties={config_dir / 'ui.properties'}",
        f"--from-file={blob}",
    )
    assert from_files.stdout.strip() == "configmap/game-config-2 created"

    assert get_json(kubectl, "cm", "special-config", "-n", namespace)["data"] == {
        "special.how": "very",
        "special.type": "charm",
    }
    assert get_json(kubectl, "cm", "game-config", "-n", namespace)["data"] == {
        "game.properties": "enemies=aliens\nlives=3\n",
        "ui.properties": "color.good=purple\nhow.nice.to.look=fairlyNice\n",
    }
    files = get_json(kubectl, "cm", "game-config-2", "-n", namespace, "--show-managed-fields")
    assert files["data"] == {
        "game.properties": "enemies=aliens\nlives=3\n",
        "renamed.properties": "color.good=purple\nhow.nice.to.look=fairlyNice\n",
    }
    # Content that is not UTF-8 goes to binaryData, base64 on the JSON wire.
    assert files["binaryData"] == {"blob.bin": base64.b64encode(blob.read_bytes()).decode()}
    assert managers(files) == {("kubectl-create", "Update")}

    table = by_name(kubectl("get", "cm", "-n", namespace).stdout)
    assert {name: row["DATA"] for name, row in table.items() if name != "kube-root-ca.crt"} == {
        "special-config": "2",
        "game-config": "2",
        "game-config-2": "3",
    }


# -- Secrets -----------------------------------------------------------------------------------


@pytest.mark.kubectl_skew
def test_docker_registry_secret_from_the_seed(kubectl: Kubectl, namespace: str) -> None:
    created = kubectl(
        "create",
        "secret",
        "-n",
        namespace,
        "docker-registry",
        "regcred",
        "--docker-server=yourprivateregistry.com",
        "--docker-username=allen",
        "--docker-password=mypassw0rd",
        "--docker-email=allen@example.com",
    )
    assert created.stdout.strip() == "secret/regcred created"

    listing = kubectl("get", "secret", "-n", namespace, "regcred").stdout
    assert columns(listing) == ["NAME", "TYPE", "DATA", "AGE"]
    row = by_name(listing)["regcred"]
    assert (row["TYPE"], row["DATA"]) == ("kubernetes.io/dockerconfigjson", "1")

    # The seed pipes this through `base64 --decode`.
    encoded = kubectl(
        "get",
        "secret",
        "regcred",
        "-n",
        namespace,
        "--output=jsonpath={.data.\\.dockerconfigjson}",
    ).stdout
    plain = base64.b64decode(encoded)
    assert json.loads(plain) == DOCKER_CONFIG
    assert len(plain) == 144

    described = kubectl("describe", "secret", "-n", namespace, "regcred").stdout
    assert "Name:         regcred" in described
    assert "Type:  kubernetes.io/dockerconfigjson" in described
    assert ".dockerconfigjson:  144 bytes" in described
    assert "mypassw0rd" not in described and encoded not in described


@pytest.mark.kubectl_skew
def test_generic_secret_from_literals_equals_the_seed_manifest(
    kubectl: Kubectl, namespace: str
) -> None:
    created = kubectl(
        "create",
        "secret",
        "generic",
        "dev-db-secret",
        "-n",
        namespace,
        "--from-literal=username=devuser",
        f"--from-literal=password={SEED_PASSWORD}",
    )
    assert created.stdout.strip() == "secret/dev-db-secret created"

    secret = get_json(kubectl, "secret", "dev-db-secret", "-n", namespace)
    manifest = yaml.safe_load((SEED / "secret-demo.yaml").read_text())
    assert secret["type"] == "Opaque"
    assert secret["data"] == manifest["data"]
    assert decoded(secret) == {"username": "devuser", "password": SEED_PASSWORD}

    row = by_name(kubectl("get", "secret", "-n", namespace).stdout)["dev-db-secret"]
    assert (row["TYPE"], row["DATA"]) == ("Opaque", "2")


@pytest.mark.kubectl_skew
def test_generic_secret_from_a_file(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    # As the seed writes it with two `echo -n`: one line, no newline in between.
    secret_file = tmp_path / "db_secret.txt"
    secret_file.write_text(f"username=devuserpassword={SEED_PASSWORD}")
    created = kubectl(
        "create",
        "secret",
        "generic",
        "dev-db-secret",
        "-n",
        namespace,
        f"--from-file={secret_file}",
    )
    assert created.stdout.strip() == "secret/dev-db-secret created"

    secret = get_json(kubectl, "secret", "dev-db-secret", "-n", namespace)
    assert decoded(secret) == {"db_secret.txt": secret_file.read_text()}
    described = kubectl("describe", "secret", "dev-db-secret", "-n", namespace).stdout
    assert "Type:  Opaque" in described
    assert "db_secret.txt:  37 bytes" in described
    assert "devuser" not in described


def test_seed_secret_manifests(cluster: Cluster, demo: str) -> None:
    created = cluster.kubectl("create", "-f", str(SEED / "secret-demo.yaml"))
    assert created.stdout.strip() == "secret/dev-db-secret created"
    secret = get_json(cluster.kubectl, "secret", "dev-db-secret", "-n", demo)
    assert decoded(secret) == {"username": "devuser", "password": SEED_PASSWORD}

    # The stringData variant has the same name; the seed offers it as an alternative.
    cluster.kubectl("delete", "secret", "dev-db-secret", "-n", demo)
    created = cluster.kubectl("create", "-f", str(SEED / "secret-demo-stringdata.yaml"))
    assert created.stdout.strip() == "secret/dev-db-secret created"
    secret = get_json(cluster.kubectl, "secret", "dev-db-secret", "-n", demo)
    # stringData is merged into data on write and never stored itself.
    assert "stringData" not in secret
    assert decoded(secret) == {"password": "devuser", "username": SEED_PASSWORD}

    described = cluster.kubectl("describe", "secret", "dev-db-secret", "-n", demo).stdout
    assert "password:  7 bytes" in described
    assert "username:  12 bytes" in described
    assert SEED_PASSWORD not in described

    pod = cluster.kubectl("create", "-f", str(SEED / "pod-secret.yaml"))
    assert pod.stdout.strip() == "pod/secret-test-pod created"
    spec = get_json(cluster.kubectl, "pod", "secret-test-pod", "-n", demo)["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "dev-db-secret"}}]


def test_secret_list_shows_types_and_counts_only(cluster: Cluster, demo: str) -> None:
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "listed",
        "-n",
        demo,
        "--from-literal=token=t0ps3cret",
    )
    listing = cluster.kubectl("get", "secret", "-n", demo, "listed", "-o", "wide").stdout
    assert columns(listing) == ["NAME", "TYPE", "DATA", "AGE"]
    assert "t0ps3cret" not in listing
    assert base64.b64encode(b"t0ps3cret").decode() not in listing
