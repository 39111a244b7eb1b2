"""Container mounts, subPath resolution and emptyDir usage accounting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubi.node.envvars import ConfigError
from kubi.node.runtime.base import Mount
from kubi.node.volumes import emptydir_eviction_message, size_limited_emptydirs, usage_bytes
from kubi.node.volumes.atomic import AtomicWriter
from kubi.node.volumes.mounts import container_mounts
from kubi.node.volumes.subpath import SubPathError, resolve_subpath


def test_resolve_subpath_creates_and_resolves(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir(mode=0o777)
    os.chmod(volume, 0o777)
    made = resolve_subpath(str(volume), "a/b")
    assert made == str(volume / "a" / "b")
    assert oct(os.stat(made).st_mode & 0o777) == oct(0o777)
    assert resolve_subpath(str(volume), "a/./b/") == made


def test_resolve_subpath_follows_atomic_links_to_the_real_file(tmp_path: Path) -> None:
    AtomicWriter(str(tmp_path)).write({"game.properties": (b"v1", 0o644)})
    first = resolve_subpath(str(tmp_path), "game.properties")
    data_dir = os.readlink(tmp_path / "..data")
    assert first == os.path.join(os.path.realpath(tmp_path), data_dir, "game.properties")
    AtomicWriter(str(tmp_path)).write({"game.properties": (b"v2", 0o644)})
    # The old resolved path is what a running subPath mount still shows.
    assert resolve_subpath(str(tmp_path), "game.properties") != first


@pytest.mark.parametrize("sub_path, message", [
    ("/etc", "error SubPath `/etc` must not be an absolute path"),
    ("a/../b", "unable to provision SubPath `a/../b`: must not contain '..'"),
])
def test_subpath_rules(tmp_path: Path, sub_path: str, message: str) -> None:
    with pytest.raises(SubPathError, match=message.replace(".", "\\.")):
        resolve_subpath(str(tmp_path), sub_path)


def test_subpath_may_not_escape_through_a_symlink(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "escape").symlink_to(tmp_path)
    with pytest.raises(SubPathError,
                       match='failed to prepare subPath for volumeMount "v" of container "c"'):
        resolve_subpath(str(volume), "escape/x", volume_name="v", container_name="c")
    assert not (tmp_path / "x").exists()


def test_container_mounts(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = tmp_path / "config"
    cache.mkdir()
    config.mkdir()
    AtomicWriter(str(config)).write({"game.properties": (b"x", 0o644)})
    pod = {"spec": {"volumes": [{"name": "cache", "emptyDir": {}},
                                {"name": "config", "configMap": {"name": "cm"}}]}}
    container = {"name": "c", "volumeMounts": [
        {"name": "cache", "mountPath": "/cache"},
        {"name": "cache", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)", "readOnly": True},
        {"name": "config", "mountPath": "/etc/game"},
        {"name": "config", "mountPath": "/etc/game.properties", "subPath": "game.properties"},
    ]}
    mounts = container_mounts(pod, container, {"cache": str(cache), "config": str(config)},
                              {"POD_NAME": "p-1"})
    assert mounts[0] == Mount(str(cache), "/cache", readonly=False, is_file=False)
    assert mounts[1] == Mount(str(cache / "p-1"), "/logs", readonly=True, is_file=False)
    assert mounts[2] == Mount(str(config), "/etc/game", readonly=True, is_file=False)
    assert mounts[3].is_file and mounts[3].readonly
    assert os.path.realpath(mounts[3].host_path) == mounts[3].host_path
    with pytest.raises(ConfigError, match='cannot find volume "ghost" to mount into container "c"'):
        container_mounts(pod, {"name": "c", "volumeMounts": [{"name": "ghost",
                                                              "mountPath": "/x"}]}, {}, {})
    with pytest.raises(ConfigError, match="missing value for POD_NAME"):
        container_mounts(pod, container, {"cache": str(cache), "config": str(config)}, {})


def test_usage_bytes_and_eviction(tmp_path: Path) -> None:
    pod_dir = tmp_path / "pod"
    volume = pod_dir / "volumes" / "kubernetes.io~empty-dir" / "cache"
    volume.mkdir(parents=True)
    empty = usage_bytes(str(volume))
    (volume / "blob").write_bytes(os.urandom(3 * 2**20))
    os.link(volume / "blob", volume / "hardlink")
    (volume / "link").symlink_to("/usr")
    used = usage_bytes(str(volume))
    assert 3 * 2**20 <= used - empty < 4 * 2**20
    assert usage_bytes(str(tmp_path / "missing")) == 0
    pod = {"spec": {"volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "1Mi"}},
                                {"name": "free", "emptyDir": {}}]}}
    assert size_limited_emptydirs(pod, str(pod_dir)) == [("cache", str(volume), 2**20)]
    assert emptydir_eviction_message(pod, {"cache": used, "free": 10**12}) == (
        'Usage of EmptyDir volume "cache" exceeds the limit "1Mi". ')
    assert emptydir_eviction_message(pod, {"cache": 2**20}) is None
