"""Ownership: claim decisions, adoption and release patches, expectations."""

from __future__ import annotations

from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import selector_from_set
from kubi.controllers.expectations import ControllerExpectations
from kubi.controllers.ownership import (
    Claim,
    OwnerChanged,
    adopt_patch,
    claim_decision,
    claim_pods,
    controller_of,
    controller_uid_index,
    new_controller_ref,
    orphan_index,
    release_patch,
)

OWNER = {"metadata": {"name": "web", "namespace": "ns", "uid": "rs-uid"}}
SELECTOR = selector_from_set({"app": "web"})
REF = new_controller_ref(OWNER, api_version="apps/v1", kind="ReplicaSet")


def pod(name: str, labels: dict[str, str] | None = None, owner_uid: str | None = None,
        deleting: bool = False, namespace: str = "ns") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                          "labels": labels if labels is not None else {"app": "web"}}
    if owner_uid:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x",
                                  "uid": owner_uid, "controller": True}]
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md}


def decide(obj: dict[str, Any], owner: dict[str, Any] = OWNER) -> Claim:
    return claim_decision(obj, owner=owner, selector=SELECTOR)


def test_controller_ref_shape() -> None:
    assert REF == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                   "uid": "rs-uid", "controller": True, "blockOwnerDeletion": True}
    assert controller_of(pod("a", owner_uid="rs-uid"))["uid"] == "rs-uid"  # type: ignore[index]
    non_controller = pod("a")
    non_controller["metadata"]["ownerReferences"] = [{"uid": "x", "controller": False}]
    assert controller_of(non_controller) is None


def test_claim_decisions() -> None:
    deleting_owner = {"metadata": {**OWNER["metadata"], "deletionTimestamp": "t"}}
    assert decide(pod("mine", owner_uid="rs-uid")) is Claim.KEEP
    assert decide(pod("relabeled", {"app": "other"}, owner_uid="rs-uid")) is Claim.RELEASE
    assert decide(pod("relabeled", {"app": "other"}, owner_uid="rs-uid"),
                  deleting_owner) is Claim.IGNORE
    assert decide(pod("theirs", owner_uid="other-uid")) is Claim.IGNORE
    assert decide(pod("orphan")) is Claim.ADOPT
    assert decide(pod("orphan"), deleting_owner) is Claim.IGNORE
    assert decide(pod("unselected", {"app": "db"})) is Claim.IGNORE
    assert decide(pod("dying", deleting=True)) is Claim.IGNORE
    assert decide(pod("elsewhere", namespace="other")) is Claim.IGNORE


def test_patches_carry_the_uid_precondition() -> None:
    assert adopt_patch(REF, "p-uid") == {"metadata": {"ownerReferences": [REF], "uid": "p-uid"}}
    assert release_patch("rs-uid", "p-uid") == {
        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": "rs-uid"}], "uid": "p-uid"}}


def test_indexes() -> None:
    assert controller_uid_index(pod("a", owner_uid="u")) == ("u",)
    assert controller_uid_index(pod("a")) == ()
    assert orphan_index(pod("a")) == ("ns",)
    assert orphan_index(pod("a", owner_uid="u")) == ()


async def test_claim_pods_adopts_releases_and_keeps() -> None:
    patches: list[tuple[str, dict[str, Any]]] = []

    async def patch(obj: dict[str, Any], body: dict[str, Any]) -> None:
        patches.append((obj["metadata"]["name"], body))

    async def recheck() -> dict[str, Any]:
        return OWNER

    pods = [pod("mine", owner_uid="rs-uid"), pod("orphan"),
            pod("relabeled", {"app": "x"}, owner_uid="rs-uid"), pod("theirs", owner_uid="o")]
    claimed, errors = await claim_pods(pods, owner=OWNER, controller_ref=REF, selector=SELECTOR,
                                       recheck_owner=recheck, patch=patch)
    assert errors == []
    assert sorted(p["metadata"]["name"] for p in claimed) == ["mine", "orphan"]
    assert dict(patches) == {"orphan": adopt_patch(REF, "uid-orphan"),
                             "relabeled": release_patch("rs-uid", "uid-relabeled")}


async def test_no_adoption_when_a_fresh_read_shows_the_owner_going() -> None:
    patched: list[str] = []

    async def patch(obj: dict[str, Any], body: dict[str, Any]) -> None:
        patched.append(obj["metadata"]["name"])

    async def recheck_deleted() -> dict[str, Any]:
        return {"metadata": {**OWNER["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}}

    async def recheck_replaced() -> dict[str, Any]:
        return {"metadata": {**OWNER["metadata"], "uid": "new"}}

    for recheck in (recheck_deleted, recheck_replaced):
        claimed, errors = await claim_pods([pod("orphan")], owner=OWNER, controller_ref=REF,
                                           selector=SELECTOR, recheck_owner=recheck, patch=patch)
        assert claimed == [] and isinstance(errors[0], OwnerChanged)
    assert patched == []


async def test_vanished_pods_are_not_errors() -> None:
    async def patch(obj: dict[str, Any], body: dict[str, Any]) -> None:
        if obj["metadata"]["name"] == "gone":
            raise StatusError(404, "NotFound", "gone")
        raise StatusError(500, "InternalError", "boom")

    async def recheck() -> dict[str, Any]:
        return OWNER

    claimed, errors = await claim_pods(
        [pod("gone"), pod("broken", {"app": "x"}, owner_uid="rs-uid")], owner=OWNER,
        controller_ref=REF, selector=SELECTOR, recheck_owner=recheck, patch=patch)
    assert claimed == []
    assert [e.code for e in errors] == [500]  # type: ignore[attr-defined]


# ---- expectations


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_expectations_count_creations_down() -> None:
    exp = ControllerExpectations(clock=Clock())
    assert exp.satisfied("ns/web")  # never set: act
    exp.expect_creations("ns/web", 2)
    assert not exp.satisfied("ns/web")
    exp.creation_observed("ns/web")
    assert not exp.satisfied("ns/web")
    exp.creation_observed("ns/web")
    assert exp.satisfied("ns/web")


def test_expectations_count_each_deleted_pod_once() -> None:
    exp = ControllerExpectations(clock=Clock())
    exp.expect_deletions("ns/web", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/web", "ns/a")
    exp.deletion_observed("ns/web", "ns/a")  # terminating, then gone: counted once
    exp.deletion_observed("ns/web", "ns/zzz")  # not one we deleted
    assert exp.pending("ns/web") == (0, 1)
    exp.deletion_observed("ns/web", "ns/b")
    assert exp.satisfied("ns/web")


def test_expectations_expire_after_five_minutes() -> None:
    clock = Clock()
    exp = ControllerExpectations(clock=clock)
    exp.expect_creations("ns/web", 3)
    clock.now += 299
    assert not exp.satisfied("ns/web")
    clock.now += 2
    assert exp.satisfied("ns/web")
    exp.delete("ns/web")
    assert exp.pending("ns/web") == (0, 0)
