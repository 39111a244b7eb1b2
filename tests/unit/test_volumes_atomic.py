"""The AtomicWriter's on-disk layout, updates, no-ops and refusals."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from kubi.node.volumes.atomic import AtomicWriter, FileProjection, PayloadError, timestamp_name

TS = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$")

SEED = {
    "game.properties": (b"enemy.types=aliens,monsters\nplayer.maximum-lives=5\n", 0o644),
    "player_initial_lives": (b"3", 0o644),
    "ui_properties_file_name": (b"user-interface.properties", 0o644),
    "user-interface.properties": (b"color.good=purple\ncolor.bad=yellow\n", 0o644),
}


def listing(root: Path) -> dict[str, str]:
    """name -> link target, or 'dir'/'file' (like `ls -al`, without the dots)."""
    out = {}
    for name in sorted(os.listdir(root)):
        path = root / name
        if path.is_symlink():
            out[name] = os.readlink(path)
        else:
            out[name] = "dir" if path.is_dir() else "file"
    return out


def test_timestamp_name_format() -> None:
    assert TS.match(timestamp_name())
    assert timestamp_name(0).startswith("..1970_01_01_00_00_00.")


def test_layout_matches_the_seed(tmp_path: Path) -> None:
    assert AtomicWriter(str(tmp_path)).write(SEED) is True
    entries = listing(tmp_path)
    ts = entries.pop("..data")
    assert TS.match(ts)
    assert entries.pop(ts) == "dir"
    assert entries == {name: f"..data/{name}" for name in SEED}
    assert stat.S_IMODE(os.stat(tmp_path / ts).st_mode) == 0o755
    for name, (data, mode) in SEED.items():
        assert (tmp_path / name).read_bytes() == data
        assert stat.S_IMODE(os.stat(tmp_path / ts / name).st_mode) == mode


def test_update_swaps_data_and_removes_old_dir(tmp_path: Path) -> None:
    writer = AtomicWriter(str(tmp_path))
    writer.write(SEED)
    old = os.readlink(tmp_path / "..data")
    changed = dict(SEED, **{"game.properties": (b"enemy.types=robots\n", 0o644)})
    del changed["player_initial_lives"]
    changed["new-key"] = (b"n", 0o600)
    assert writer.write(changed) is True
    new = os.readlink(tmp_path / "..data")
    assert new != old and TS.match(new)
    assert not (tmp_path / old).exists()
    assert not os.path.lexists(tmp_path / "player_initial_lives")
    assert (tmp_path / "game.properties").read_bytes() == b"enemy.types=robots\n"
    assert stat.S_IMODE(os.stat(tmp_path / "new-key").st_mode) == 0o600
    assert not os.path.lexists(tmp_path / "..data_tmp")
    assert sorted(os.listdir(tmp_path)) == sorted(["..data", new, *changed])


def test_unchanged_content_is_a_no_op_but_restores_links(tmp_path: Path) -> None:
    writer = AtomicWriter(str(tmp_path))
    writer.write(SEED)
    before = os.readlink(tmp_path / "..data")
    os.remove(tmp_path / "game.properties")
    assert writer.write(SEED) is False
    assert os.readlink(tmp_path / "..data") == before
    assert os.readlink(tmp_path / "game.properties") == "..data/game.properties"


def test_nested_paths_link_their_top_directory(tmp_path: Path) -> None:
    writer = AtomicWriter(str(tmp_path))
    writer.write({"a/b/c": (b"1", 0o644), "a/d": (b"2", 0o644), "e": (b"3", 0o644)})
    assert os.readlink(tmp_path / "a") == "..data/a"
    assert (tmp_path / "a" / "b" / "c").read_bytes() == b"1"
    writer.write({"a/d": (b"2", 0o644)})
    assert not (tmp_path / "a" / "b").exists()
    assert not os.path.lexists(tmp_path / "e")


def test_empty_payload_keeps_only_data_link(tmp_path: Path) -> None:
    writer = AtomicWriter(str(tmp_path))
    writer.write({})
    assert set(os.listdir(tmp_path)) == {"..data", os.readlink(tmp_path / "..data")}


def test_owner_and_set_perms(tmp_path: Path) -> None:
    seen: list[str] = []
    AtomicWriter(str(tmp_path)).write({"token": FileProjection(b"t", 0o600, uid=os.getuid())},
                                      set_perms=seen.append)
    assert seen == [os.readlink(tmp_path / "..data")]
    assert os.stat(tmp_path / "token").st_uid == os.getuid()


@pytest.mark.parametrize("path, message", [
    ("", "must not be empty"),
    ("/abs", "must be relative path: /abs"),
    ("a/../b", "must not contain '..': a/../b"),
    ("..hidden", "must not start with '..': ..hidden"),
    ("x" * 256, "filenames must be less than or equal to 255 characters"),
])
def test_invalid_paths(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        AtomicWriter(str(tmp_path)).write({path: (b"", 0o644)})
    assert os.listdir(tmp_path) == []


def test_target_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        AtomicWriter(str(tmp_path / "missing"))
