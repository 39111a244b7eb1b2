"""PersistentVolume, PersistentVolumeClaim, StorageClass, CSIDriver and CSINode:
defaults, server-set status and the exact upstream validation messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubi.api import hooks
from kubi.api.kinds.persistent import validate_claim_spec

hooks.load()


def write(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    hooks.apply_defaults(obj)
    hooks.prepare(obj, old)
    return [str(e) for e in hooks.validate(obj, old, sub)]


def pv(**spec: Any) -> dict:
    base = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv1"},
        "spec": base,
    }


def pvc(**spec: Any) -> dict:
    base = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    base.update(spec)
    meta = {"name": "data", "namespace": "default"}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": base}


# -- PersistentVolume ------------------------------------------------------------------


def test_pv_defaults_and_pending_status() -> None:
    vol = pv(hostPath={"path": "/srv/data"})
    assert write(vol) == []
    assert vol["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert vol["spec"]["volumeMode"] == "Filesystem"
    assert vol["spec"]["hostPath"] == {"path": "/srv/data", "type": ""}
    assert vol["status"]["phase"] == "Pending"
    assert vol["status"]["lastPhaseTransitionTime"].endswith("Z")


ACCESS_MODES = '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"'


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            {"capacity": {}, "accessModes": []},
            [
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                'spec.capacity: Unsupported value: core.ResourceList(nil): supported values: "storage"',
                "spec: Required value: must specify a volume type",
            ],
        ),
        (
            {"accessModes": ["ReadWriteSometimes"], "nfs": {"server": "nfs", "path": "/x"}},
            [
                f'spec.accessModes: Unsupported value: "ReadWriteSometimes": supported values: {ACCESS_MODES}'
            ],
        ),
        (
            {
                "accessModes": ["ReadWriteOncePod", "ReadOnlyMany"],
                "nfs": {"server": "s", "path": "/x"},
            },
            ["spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes"],
        ),
        (
            {"capacity": {"storage": "0"}, "hostPath": {"path": "/x"}},
            ['spec.capacity[storage]: Invalid value: "0": must be greater than zero'],
        ),
        (
            {"hostPath": {"path": "/x"}, "nfs": {"server": "s", "path": "/y"}},
            ["spec.nfs: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            {"hostPath": {"path": "/x/../etc", "type": "Dir"}},
            [
                "spec.hostPath.path: Invalid value: \"/x/../etc\": must not contain '..'",
                (
                    'spec.hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", '
                    '"CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"'
                ),
            ],
        ),
        (
            {"nfs": {"server": "", "path": "x"}},
            [
                "spec.nfs.server: Required value",
                'spec.nfs.path: Invalid value: "x": must be an absolute path',
            ],
        ),
        (
            {"local": {"path": "/mnt/disk"}},
            ["spec.nodeAffinity: Required value: Local volume requires node affinity"],
        ),
        (
            {
                "local": {"path": "/mnt/disk"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": []}},
            },
            [
                (
                    "spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least "
                    "one node selector term"
                )
            ],
        ),
        (
            {"csi": {"driver": "", "volumeHandle": ""}},
            [
                "spec.csi.driver: Required value",
                (
                    'spec.csi.driver: Invalid value: "": a lowercase RFC 1123 subdomain must consist of '
                    "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                    "alphanumeric character (e.g. 'example.com', regex used for validation is "
                    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                ),
                "spec.csi.volumeHandle: Required value",
            ],
        ),
        (
            {"hostPath": {"path": "/"}, "persistentVolumeReclaimPolicy": "Recycle"},
            [
                "spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"
            ],
        ),
        (
            {"hostPath": {"path": "/x"}, "persistentVolumeReclaimPolicy": "Keep"},
            [
                (
                    'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: '
                    '"Delete", "Recycle", "Retain"'
                )
            ],
        ),
    ],
)
def test_pv_validation(spec: dict, errors: list[str]) -> None:
    assert write(pv(**spec)) == errors


def test_pv_source_is_immutable() -> None:
    old = pv(hostPath={"path": "/a"})
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["hostPath"]["path"] = "/b"
    errors = write(new, old)
    assert len(errors) == 1
    assert errors[0].startswith(
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n"
    )


def test_pv_status_transition_time_follows_phase() -> None:
    old = pv(hostPath={"path": "/a"})
    write(old)
    old["status"]["lastPhaseTransitionTime"] = "2020-01-01T00:00:00Z"
    new = copy.deepcopy(old)
    new["status"]["phase"] = "Available"
    assert write(new, old, "status") == []
    assert new["status"]["lastPhaseTransitionTime"] != "2020-01-01T00:00:00Z"


# -- PersistentVolumeClaim -------------------------------------------------------------


def test_pvc_defaults() -> None:
    claim = pvc()
    assert write(claim) == []
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        (
            {"accessModes": [], "resources": {}},
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.resources[storage]: Required value",
            ],
        ),
        (
            {"resources": {"requests": {"storage": "-1Gi"}}},
            ['spec.resources[storage]: Invalid value: "-1Gi": must be greater than zero'],
        ),
        (
            {"volumeMode": "Raw"},
            ['spec.volumeMode: Unsupported value: "Raw": supported values: "Block", "Filesystem"'],
        ),
        (
            {"dataSource": {"kind": "Snapshot", "name": "s"}},
            [
                (
                    "spec.dataSource: Invalid value: \"Snapshot\": must be 'PersistentVolumeClaim' when "
                    "referencing the default apiGroup"
                )
            ],
        ),
        (
            {"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            [
                (
                    "spec.selector.matchExpressions[0].values: Required value: must be specified when "
                    "`operator` is 'In' or 'NotIn'"
                )
            ],
        ),
    ],
)
def test_pvc_validation(spec: dict, errors: list[str]) -> None:
    assert write(pvc(**spec)) == errors


def test_claim_spec_validates_anywhere() -> None:
    assert [str(e) for e in validate_claim_spec({}, "spec.volumeClaimTemplates[0].spec")] == [
        "spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required",
        "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value",
    ]


FROZEN = (
    "spec: Forbidden: spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims\n"
)


def _stored_claim(bound: bool = False) -> dict:
    claim = pvc()
    write(claim)
    if bound:
        claim["spec"]["volumeName"] = "pv1"
        claim["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}}
    return claim


def test_pvc_spec_is_frozen_except_requests_when_bound() -> None:
    old = _stored_claim()
    new = copy.deepcopy(old)
    new["spec"]["accessModes"] = ["ReadWriteMany"]
    errors = write(new, old)
    assert len(errors) == 1 and errors[0].startswith(FROZEN)
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert write(grown, old)[0].startswith(FROZEN)
    bound = _stored_claim(bound=True)
    grown = copy.deepcopy(bound)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert write(grown, bound) == []
    shrunk = copy.deepcopy(bound)
    shrunk["spec"]["resources"]["requests"]["storage"] = "512Mi"
    assert write(shrunk, bound) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    ]


def test_pvc_volume_name_is_set_once_by_the_binder() -> None:
    old = _stored_claim()
    new = copy.deepcopy(old)
    new["spec"]["volumeName"] = "pv1"
    assert write(new, old) == []
    again = copy.deepcopy(new)
    again["spec"]["volumeName"] = "pv2"
    assert write(again, new)[0].startswith(FROZEN)


def test_pvc_equal_quantities_are_not_a_change() -> None:
    old = _stored_claim()
    new = copy.deepcopy(old)
    new["spec"]["resources"]["requests"]["storage"] = "1024Mi"
    assert write(new, old) == []


# -- StorageClass ----------------------------------------------------------------------


def storage_class(**fields: Any) -> dict:
    meta = {"name": "standard"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta, **fields}


def test_storage_class_defaults() -> None:
    sc = storage_class(provisioner="kubi.io/hostpath")
    assert write(sc) == []
    assert sc["reclaimPolicy"] == "Delete" and sc["volumeBindingMode"] == "Immediate"


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({}, ["provisioner: Required value"]),
        (
            {"provisioner": "p", "reclaimPolicy": "Recycle"},
            ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"'],
        ),
        (
            {"provisioner": "p", "volumeBindingMode": "Later"},
            [
                (
                    'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", '
                    '"WaitForFirstConsumer"'
                )
            ],
        ),
        (
            {
                "provisioner": "p",
                "allowedTopologies": [{"matchLabelExpressions": [{"key": "zone"}]}],
            },
            ["allowedTopologies[0].matchLabelExpressions[0].values: Required value"],
        ),
    ],
)
def test_storage_class_validation(fields: dict, errors: list[str]) -> None:
    assert write(storage_class(**fields)) == errors


def test_storage_class_update_rules() -> None:
    old = storage_class(provisioner="a.io/x", parameters={"k": "v"})
    write(old)
    new = copy.deepcopy(old)
    new.update(
        provisioner="b.io/x",
        parameters={},
        reclaimPolicy="Retain",
        volumeBindingMode="WaitForFirstConsumer",
    )
    assert write(new, old) == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "provisioner: Forbidden: updates to provisioner are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
        'volumeBindingMode: Invalid value: "WaitForFirstConsumer": field is immutable',
    ]


# -- CSIDriver and CSINode -------------------------------------------------------------


def test_csi_driver_defaults_and_rules() -> None:
    meta = {"name": "hostpath.csi.k8s.io"}
    driver = {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": meta}
    assert write(driver) == []
    assert driver["spec"]["attachRequired"] is True
    assert driver["spec"]["volumeLifecycleModes"] == ["Persistent"]
    bad = copy.deepcopy(driver)
    bad["spec"].update(fsGroupPolicy="Sometimes", attachRequired=False)
    assert write(bad, driver) == [
        (
            'spec.fsGroupPolicy: Unsupported value: "Sometimes": supported values: "File", "None", '
            '"ReadWriteOnceWithFSType"'
        ),
        "spec.attachedRequired: Invalid value: false: field is immutable",
    ]


def test_csi_node_drivers() -> None:
    node = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": "n1"},
        "spec": {"drivers": [{"name": "d.io", "nodeID": ""}, {"name": "d.io", "nodeID": "n1"}]},
    }
    assert write(node) == [
        "spec.drivers[0].nodeID: Required value",
        'spec.drivers[1].name: Duplicate value: "d.io"',
    ]
