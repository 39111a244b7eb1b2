"""Parsing of kubectl's aligned tables by the end-to-end helpers."""

from __future__ import annotations

import pytest

from tests.e2e.tables import by_name, columns, rows

PV_TABLE = """\
NAME             CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS    CLAIM   STORAGECLASS   AGE
task-pv-volume   10Gi       RWO            Retain           Pending           manual         1s
"""

SC_TABLE = """\
NAME                    PROVISIONER         RECLAIMPOLICY   AGE
fast-rbd-sc (default)   kubernetes.io/rbd   Delete          0s
"""


def test_header_names_may_contain_single_spaces() -> None:
    assert columns(PV_TABLE) == [
        "NAME", "CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM", "STORAGECLASS",
        "AGE",
    ]  # fmt: skip


def test_empty_cells_stay_in_their_column() -> None:
    [row] = rows(PV_TABLE)
    assert row["CLAIM"] == ""
    assert row["STATUS"] == "Pending"
    assert row["STORAGECLASS"] == "manual"


def test_cells_may_contain_spaces() -> None:
    assert by_name(SC_TABLE)["fast-rbd-sc (default)"]["PROVISIONER"] == "kubernetes.io/rbd"


def test_header_only_table_has_no_rows() -> None:
    assert rows("NAME   DATA   AGE\n") == []


def test_no_output_is_an_error() -> None:
    with pytest.raises(AssertionError):
        columns("\n")
