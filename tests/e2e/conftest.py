"""Fixtures that give end-to-end tests a running kubi and a kubectl to drive it.

`cluster` is one kubi per test module (cheap enough to share, isolated enough
between modules); `fresh_cluster` is one per test, for tests that restart, kill
or otherwise spoil their server. kubectl 1.33 drives every test unless
`KUBI_TEST_KUBECTL` names another supported version; tests marked
`@pytest.mark.kubectl_skew` run once per supported version through the
`kubectl_version` parameter, and should use the `kubectl` fixture (or pass
`version=kubectl_version`) so the parameter takes effect. When a test fails, its
report gains the tail of each involved server's output.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from functools import partial
from subprocess import CompletedProcess

import pytest

from tests.e2e.harness import DEFAULT_KUBECTL_VERSION, Cluster, bound_kubectl
from tests.tools.binaries import SUPPORTED_KUBECTL_VERSIONS


def primary_kubectl_version() -> str:
    """The kubectl version for ordinary tests: `$KUBI_TEST_KUBECTL`, else 1.33."""
    version = os.environ.get("KUBI_TEST_KUBECTL", DEFAULT_KUBECTL_VERSION)
    if version not in SUPPORTED_KUBECTL_VERSIONS:
        raise pytest.UsageError(
            f"KUBI_TEST_KUBECTL={version!r}: choose one of {', '.join(SUPPORTED_KUBECTL_VERSIONS)}"
        )
    return version


def skew_versions(marker: pytest.Mark) -> list[str]:
    """The versions a `kubectl_skew` marker asks for, the primary one first."""
    requested = list(marker.args) or list(SUPPORTED_KUBECTL_VERSIONS)
    unknown = [v for v in requested if v not in SUPPORTED_KUBECTL_VERSIONS]
    if unknown:
        raise pytest.UsageError(f"kubectl_skew: unsupported kubectl versions {unknown}")
    primary = primary_kubectl_version()
    return [primary, *(v for v in requested if v != primary)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("kubectl_skew")
    if marker is not None and "kubectl_version" in metafunc.fixturenames:
        versions = skew_versions(marker)
        metafunc.parametrize("kubectl_version", versions, ids=[f"kubectl{v}" for v in versions])


@pytest.fixture
def kubectl_version() -> str:
    return primary_kubectl_version()


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One kubi per module. A module that tests the API server alone sets
    `CLUSTER_ARGS = ("--no-controllers",)`, so no controller changes its objects."""
    with Cluster(
        tmp_path_factory.mktemp("kubi"),
        kubectl_version=primary_kubectl_version(),
        extra_args=getattr(request.module, "CLUSTER_ARGS", ()),
    ) as running:
        yield running


@pytest.fixture
def fresh_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kubectl_version: str
) -> Iterator[Cluster]:
    with Cluster(
        tmp_path_factory.mktemp("kubi-fresh"),
        kubectl_version=kubectl_version,
        extra_args=getattr(request.module, "CLUSTER_ARGS", ()),
    ) as running:
        yield running


@pytest.fixture
def kubectl(cluster: Cluster, kubectl_version: str) -> partial[CompletedProcess[str]]:
    """`cluster.kubectl` bound to this test's kubectl version."""
    return bound_kubectl(cluster, kubectl_version)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        clusters = {
            id(value): value
            for value in getattr(item, "funcargs", {}).values()
            if isinstance(value, Cluster)
        }
        for running in clusters.values():
            report.sections.append((f"kubi server output ({running.base_dir})", running.log_tail()))
    return report
