"""The StatefulSet controller's pure decisions: identity, revisions, retention, status, plan."""

from __future__ import annotations

import copy
import json
from typing import Any

from kubi.api.meta import format_time
from kubi.controllers.statefulset.identity import (
    identity_matches,
    max_unavailable,
    new_pod,
    new_versioned_pod,
    parent_and_ordinal,
    storage_matches,
    with_identity,
    with_storage,
)
from kubi.controllers.statefulset.plan import Action, plan_sync, rolling_update_victims
from kubi.controllers.statefulset.retention import (
    claim_owner_up_to_date,
    pod_claim_is_stale,
    updated_owner_refs,
)
from kubi.controllers.statefulset.revisions import (
    apply_revision,
    canonical_json,
    fnv1_32,
    new_revision,
    revision_hash,
    revisions_to_truncate,
    safe_encode,
    sort_revisions,
)
from kubi.controllers.statefulset.status import (
    SetStatus,
    complete_rolling_update,
    count_pods,
    needs_write,
)

NOW = 1_700_000_000.0
Obj = dict[str, Any]


def statefulset(name: str = "web", replicas: int = 3, *, policy: str = "OrderedReady",
                strategy: Obj | None = None, claims: bool = False, start: int | None = None,
                retention: tuple[str, str] | None = None, min_ready: int = 0) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "serviceName": "nginx",
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}},
        "updateStrategy": strategy or {"type": "RollingUpdate",
                                       "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
    }
    if claims:
        spec["volumeClaimTemplates"] = [{
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "www", "labels": {"tier": "data"}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}}]
    if start is not None:
        spec["ordinals"] = {"start": start}
    if retention:
        spec["persistentVolumeClaimRetentionPolicy"] = {"whenScaled": retention[0],
                                                        "whenDeleted": retention[1]}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": "demo", "uid": "set-uid", "generation": 1},
            "spec": spec}


def revision_for(sts: Obj, number: int = 1) -> Obj:
    rev = new_revision(sts, number, 0)
    rev["metadata"]["uid"] = f"rev-{number}"
    return rev


def running(pod: Obj, *, ready: bool = True, since: float = NOW - 100,
            revision: str | None = None, terminating: bool = False) -> Obj:
    pod = copy.deepcopy(pod)
    pod["metadata"]["uid"] = f"uid-{pod['metadata']['name']}"
    pod["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": format_time(since)}]}
    if revision is not None:
        pod["metadata"]["labels"]["controller-revision-hash"] = revision
    if terminating:
        pod["metadata"]["deletionTimestamp"] = format_time(NOW)
    return pod


def pods_at(sts: Obj, revision: Obj, ordinals: range | list[int], **kw: Any) -> list[Obj]:
    name = revision["metadata"]["name"]
    return [running(new_versioned_pod(sts, sts, name, name, o), **kw) for o in ordinals]


def no_claims(_: str) -> Obj | None:
    return None


def plan_for(sts: Obj, pods: list[Obj], *, current: Obj | None = None,
             update: Obj | None = None, lookup: Any = no_claims) -> Any:
    update = update or revision_for(sts)
    return plan_sync(sts, pods, current=current or update, update=update, collision_count=0,
                     lookup=lookup, now=NOW)


def steps(plan: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(phase.name, step.pod["metadata"]["name"], tuple(a.value for a in step.actions))
            for phase in plan.phases for step in phase.steps]


# ---- identity


def test_names_carry_parent_and_ordinal() -> None:
    assert parent_and_ordinal("web-demo-12") == ("web-demo", 12)
    assert parent_and_ordinal("web") == ("", -1)
    assert parent_and_ordinal("web-99999999999") == ("web", -1)


def test_new_pod_has_identity_storage_and_owner() -> None:
    sts = statefulset(claims=True)
    pod = new_pod(sts, 2)
    md = pod["metadata"]
    assert md["name"] == "web-2" and md["namespace"] == "demo"
    assert md["generateName"] == "web-"
    assert md["labels"] == {"app": "nginx", "statefulset.kubernetes.io/pod-name": "web-2",
                            "apps.kubernetes.io/pod-index": "2"}
    assert md["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                      "name": "web", "uid": "set-uid", "controller": True,
                                      "blockOwnerDeletion": True}]
    assert pod["spec"]["hostname"] == "web-2" and pod["spec"]["subdomain"] == "nginx"
    assert pod["spec"]["volumes"] == [{"name": "www",
                                       "persistentVolumeClaim": {"claimName": "www-web-2"}}]
    assert identity_matches(sts, pod) and storage_matches(sts, pod)


def test_identity_and_storage_are_restored() -> None:
    sts = statefulset(claims=True)
    pod = new_pod(sts, 1)
    del pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"]
    pod["spec"]["volumes"] = [{"name": "www", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
    assert not identity_matches(sts, pod) and not storage_matches(sts, pod)
    fixed = with_storage(sts, with_identity(sts, pod))
    assert identity_matches(sts, fixed) and storage_matches(sts, fixed)
    assert [v["name"] for v in fixed["spec"]["volumes"]] == ["www", "cache"]


def test_versioned_pods_follow_the_partition() -> None:
    sts = statefulset(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                      start=5)
    newer = copy.deepcopy(sts)
    newer["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    below = new_versioned_pod(sts, newer, "old", "new", 6)
    above = new_versioned_pod(sts, newer, "old", "new", 7)
    assert below["metadata"]["labels"]["controller-revision-hash"] == "old"
    assert below["spec"]["containers"][0]["image"] == "nginx:1"
    assert above["metadata"]["labels"]["controller-revision-hash"] == "new"
    assert above["spec"]["containers"][0]["image"] == "nginx:2"
    on_delete = statefulset(strategy={"type": "OnDelete"})
    assert new_versioned_pod(on_delete, on_delete, "old", "new", 0)["metadata"]["labels"][
        "controller-revision-hash"] == "new"


def test_max_unavailable_rounds_down_but_never_below_one() -> None:
    sts = statefulset(replicas=10, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "partition": 0, "maxUnavailable": "25%"}})
    assert max_unavailable(sts) == 2
    sts["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "5%"
    assert max_unavailable(sts) == 1
    assert max_unavailable(statefulset()) == 1


# ---- revisions


def test_fnv1_and_the_safe_alphabet() -> None:
    assert fnv1_32(b"") == 0x811C9DC5
    assert fnv1_32(b"a") == 0x050C5D7E
    assert safe_encode("0123456789") == "456789bcdf"


def test_revision_hash_matches_upstream_fixture() -> None:
    # Data and hash of pkg/controller/statefulset/testdata/compatibility_revision_1.33.0.json.
    raw = ('{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},'
           '"creationTimestamp":null,"labels":{"app":"foo"}},"spec":{"containers":[{"image":'
           '"test","imagePullPolicy":"Always","name":"test","resources":{},'
           '"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],'
           '"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":'
           '"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}')
    data = json.loads(raw)
    assert canonical_json(data).decode() == raw
    assert revision_hash(data, 0) == "c77f6d978"


def test_new_revision_records_the_template() -> None:
    sts = statefulset()
    sts["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    rev = new_revision(sts, 3, 0)
    hash_ = rev["metadata"]["labels"]["controller.kubernetes.io/hash"]
    assert rev["metadata"]["name"] == f"web-{hash_}"
    assert rev["metadata"]["labels"]["app"] == "nginx"
    assert rev["metadata"]["annotations"] == {"kubernetes.io/change-cause": "first"}
    assert rev["revision"] == 3
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert new_revision(sts, 3, 1)["metadata"]["name"] != rev["metadata"]["name"]
    changed = copy.deepcopy(sts)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    restored = apply_revision(changed, rev)
    assert restored["spec"]["template"] == sts["spec"]["template"]


def test_history_beyond_the_limit_is_truncated_oldest_first() -> None:
    revs = [{"metadata": {"name": f"r{i}", "creationTimestamp": format_time(NOW)},
             "revision": i} for i in (5, 1, 6, 3, 2, 4)]
    ordered = sort_revisions(revs)
    assert [r["revision"] for r in ordered] == [1, 2, 3, 4, 5, 6]
    doomed = revisions_to_truncate(ordered, live={"r4", "r6"}, limit=2)
    assert [r["metadata"]["name"] for r in doomed] == ["r1", "r2"]
    assert revisions_to_truncate(ordered, live=set(), limit=10) == []


# ---- retention


def claim(refs: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "www-web-1", "ownerReferences": refs or []}}


def set_ref(uid: str = "set-uid") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": uid,
            "controller": True, "blockOwnerDeletion": True}


def pod_ref(uid: str = "uid-web-1") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": uid,
            "controller": True, "blockOwnerDeletion": True}


def test_retention_policy_table() -> None:
    pod = running(new_pod(statefulset(), 1))
    cases = [  # (whenScaled, whenDeleted, replicas) -> expected owners
        (("Retain", "Retain"), 3, []),
        (("Retain", "Delete"), 3, [set_ref()]),
        (("Delete", "Retain"), 3, []),
        (("Delete", "Retain"), 1, [pod_ref()]),
        (("Delete", "Delete"), 3, [set_ref()]),
        (("Delete", "Delete"), 1, [pod_ref()]),
    ]
    for retention, replicas, owners in cases:
        sts = statefulset(replicas=replicas, retention=retention)
        assert updated_owner_refs(claim(), sts, pod) == owners, retention
        assert not claim_owner_up_to_date(claim([set_ref(), pod_ref()]), sts, pod)
        assert claim_owner_up_to_date(claim(owners), sts, pod), (retention, replicas)


def test_stale_and_foreign_owners_are_left_alone() -> None:
    sts = statefulset(retention=("Delete", "Delete"))
    pod = running(new_pod(sts, 1))
    assert claim_owner_up_to_date(claim([set_ref("older-set")]), sts, pod)
    foreign = {"apiVersion": "x/v1", "kind": "Other", "name": "o", "uid": "o", "controller": True}
    assert claim_owner_up_to_date(claim([foreign]), sts, pod)
    assert updated_owner_refs(claim([foreign, set_ref()]), sts, pod) == [foreign]
    # A new pod (no UID yet) must wait while the claim still belongs to its predecessor.
    fresh = new_pod(sts, 1)
    sts_claims = statefulset(retention=("Delete", "Retain"), claims=True)
    lookup = {"www-web-1": claim([pod_ref("old-pod")])}.get
    assert pod_claim_is_stale(sts_claims, fresh, lookup)
    assert not pod_claim_is_stale(statefulset(claims=True), fresh, lookup)


# ---- status


def test_status_counts_revisions_and_wire_form() -> None:
    sts = statefulset(min_ready=60)
    base = SetStatus(observed_generation=2, current_revision="a", update_revision="b")
    pods = [running(new_pod(sts, 0), revision="a"),
            running(new_pod(sts, 1), revision="b", since=NOW - 10),
            running(new_pod(sts, 2), revision="b", terminating=True),
            new_pod(sts, 3)]
    status = count_pods(base, pods, min_ready=60, now=NOW)
    assert (status.replicas, status.ready_replicas, status.available_replicas,
            status.current_replicas, status.updated_replicas) == (3, 3, 2, 1, 1)
    assert status.to_wire() == {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
                                "currentReplicas": 1, "updatedReplicas": 1,
                                "currentRevision": "a", "updateRevision": "b",
                                "collisionCount": 0, "availableReplicas": 2}
    assert SetStatus().to_wire() == {"replicas": 0, "collisionCount": 0, "availableReplicas": 0}


def test_rolling_update_completes_when_all_are_updated_and_ready() -> None:
    sts = statefulset(replicas=2)
    done = SetStatus(replicas=2, ready_replicas=2, updated_replicas=2, current_replicas=0,
                     current_revision="a", update_revision="b")
    assert complete_rolling_update(sts, done).current_revision == "b"
    assert complete_rolling_update(sts, done).current_replicas == 2
    halfway = SetStatus(replicas=2, ready_replicas=1, updated_replicas=2,
                        current_revision="a", update_revision="b")
    assert complete_rolling_update(sts, halfway).current_revision == "a"
    sts["status"] = done.to_wire()
    assert not needs_write(sts, done)
    assert needs_write(sts, SetStatus(observed_generation=1, replicas=2, ready_replicas=2,
                                      updated_replicas=2, current_revision="a",
                                      update_revision="b"))


# ---- plan


def test_ordered_ready_creates_one_pod_and_waits() -> None:
    sts = statefulset(replicas=3)
    assert steps(plan_for(sts, [])) == [("replicas", "web-0", ("create",))]
    rev = revision_for(sts)
    pending = [new_versioned_pod(sts, sts, rev["metadata"]["name"], "x", 0)]
    pending[0]["status"] = {"phase": "Pending"}
    assert steps(plan_for(sts, pending, update=rev)) == []
    ready = pods_at(sts, rev, [0])
    assert steps(plan_for(sts, ready, update=rev)) == [("replicas", "web-1", ("create",))]


def test_ordered_ready_waits_for_availability() -> None:
    sts = statefulset(replicas=2, min_ready=30)
    rev = revision_for(sts)
    young = pods_at(sts, rev, [0], since=NOW - 5)
    assert steps(plan_for(sts, young, update=rev)) == []
    assert steps(plan_for(sts, pods_at(sts, rev, [0], since=NOW - 60), update=rev)) == [
        ("replicas", "web-1", ("create",))]


def test_parallel_creates_every_missing_pod() -> None:
    sts = statefulset(replicas=3, policy="Parallel", start=10)
    assert [s[1] for s in steps(plan_for(sts, []))] == ["web-10", "web-11", "web-12"]


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time() -> None:
    sts = statefulset(replicas=2)
    rev = revision_for(sts)
    pods = pods_at(sts, rev, range(5))
    assert steps(plan_for(sts, pods, update=rev)) == [("scale-down", "web-4", ("delete",))]
    pods[4] = running(pods[4], terminating=True)
    assert steps(plan_for(sts, pods, update=rev)) == []  # waits for web-4 to go
    parallel = statefulset(replicas=2, policy="Parallel")
    assert [s[1] for s in steps(plan_for(parallel, pods_at(parallel, rev, range(5)),
                                         update=rev))] == ["web-4", "web-3", "web-2"]


def test_finished_pods_are_deleted_then_recreated() -> None:
    sts = statefulset(replicas=2)
    rev = revision_for(sts)
    pods = pods_at(sts, rev, range(2))
    pods[1]["status"]["phase"] = "Failed"
    assert steps(plan_for(sts, pods, update=rev)) == [("replicas", "web-1", ("delete",))]


def test_rolling_update_goes_down_to_the_partition() -> None:
    sts = statefulset(replicas=4, strategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"partition": 2}})
    old = revision_for(sts, 1)
    newer = copy.deepcopy(sts)
    newer["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    new = revision_for(newer, 2)
    pods = pods_at(sts, old, range(4))
    plan = plan_for(newer, pods, current=old, update=new)
    assert steps(plan) == [("rolling-update", "web-3", ("delete",))]
    assert plan.status.current_replicas == 4 and plan.status.updated_replicas == 0
    # web-3 updated but not ready yet: wait.
    pods[3] = running(pods_at(newer, new, [3])[0], ready=False)
    assert steps(plan_for(newer, pods, current=old, update=new)) == []
    pods[3] = pods_at(newer, new, [3])[0]
    assert steps(plan_for(newer, pods, current=old, update=new)) == [
        ("rolling-update", "web-2", ("delete",))]
    pods[2] = pods_at(newer, new, [2])[0]
    assert steps(plan_for(newer, pods, current=old, update=new)) == []  # below the partition


def test_max_unavailable_deletes_several_at_once() -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}
    sts = statefulset(replicas=5, strategy=rolling)
    pods = [running(new_pod(sts, o), revision="old") for o in range(5)]
    assert [p["metadata"]["name"] for p in rolling_update_victims(sts, pods, "new", now=NOW)] \
        == ["web-4", "web-3"]
    pods[1] = running(pods[1], ready=False)
    assert [p["metadata"]["name"] for p in rolling_update_victims(sts, pods, "new", now=NOW)] \
        == ["web-4"]


def test_on_delete_never_deletes_for_an_update() -> None:
    sts = statefulset(replicas=2, strategy={"type": "OnDelete"})
    old = revision_for(sts, 1)
    newer = copy.deepcopy(sts)
    newer["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    new = revision_for(newer, 2)
    plan = plan_for(newer, pods_at(sts, old, range(2)), current=old, update=new)
    assert steps(plan) == []
    # A deleted pod comes back at the update revision.
    plan = plan_for(newer, pods_at(sts, old, [0]), current=old, update=new)
    [(_, name, _)] = steps(plan)
    created = plan.phases[0].steps[0].pod
    assert name == "web-1"
    assert created["metadata"]["labels"]["controller-revision-hash"] == new["metadata"]["name"]
    assert created["spec"]["containers"][0]["image"] == "nginx:2"


def test_pods_restore_identity_and_claim_owners() -> None:
    sts = statefulset(replicas=1, claims=True, retention=("Retain", "Delete"))
    rev = revision_for(sts)
    pods = pods_at(sts, rev, [0])
    lookup = {"www-web-0": {"metadata": {"name": "www-web-0"}}}.get
    assert steps(plan_for(sts, pods, update=rev, lookup=lookup)) == [
        ("replicas", "web-0", ("update",))]
    pods[0]["status"]["phase"] = "Pending"
    assert steps(plan_for(sts, pods, update=rev, lookup=lookup))[0][2] == ("claims",)


def test_condemned_claims_follow_the_scale_policy() -> None:
    sts = statefulset(replicas=1, claims=True, retention=("Delete", "Retain"))
    rev = revision_for(sts)
    pods = pods_at(sts, rev, range(2))
    lookup = {"www-web-1": {"metadata": {"name": "www-web-1"}}}.get
    plan = plan_for(sts, pods, update=rev, lookup=lookup)
    assert steps(plan) == [("claim-owners", "web-1", ("owners",)),
                           ("scale-down", "web-1", ("delete",))]
    assert Action.FIX_CLAIM_OWNERS in plan.phases[1].steps[0].actions


def test_a_set_being_deleted_only_reports_status() -> None:
    sts = statefulset(replicas=3)
    sts["metadata"]["deletionTimestamp"] = format_time(NOW)
    rev = revision_for(sts)
    plan = plan_for(sts, pods_at(sts, rev, [0]), update=rev)
    assert plan.phases == [] and plan.status.replicas == 1
