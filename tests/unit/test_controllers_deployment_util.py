"""The Deployment controller's pure decisions, checked against upstream's worked examples.

The tables follow upstream's deployment_util_test.go, rolling_test.go and
sync_test.go (TestScale), restated here: the same inputs must give the same
numbers.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubi.api.meta import format_time
from kubi.controllers.deployment import plans
from kubi.controllers.deployment.conditions import (
    AVAILABLE,
    PROGRESSING,
    get_condition,
    new_condition,
    remove_condition,
    set_condition,
)
from kubi.controllers.deployment.hashing import compute_hash, fnv32a, safe_encode
from kubi.controllers.deployment.replicasets import (
    by_revision,
    by_size_newer,
    by_size_older,
    equal_ignore_hash,
    find_new_replica_set,
    find_old_replica_sets,
    new_replica_set,
    replicas_annotations_need_update,
    set_new_replica_set_annotations,
    set_replicas_annotations,
)
from kubi.controllers.deployment.status import (
    calculate_status,
    requeue_delay,
    rollout_status,
)
from kubi.controllers.deployment.util import (
    DESIRED_REPLICAS,
    MAX_INT32,
    MAX_REPLICAS,
    REVISION,
    REVISION_HISTORY,
    IntOrPercentError,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    int32_annotation,
    is_saturated,
    max_surge,
    max_unavailable,
    min_available,
    new_rs_new_replicas,
    replica_set_fraction,
    resolve_fenceposts,
    round_half_away,
    scaled_value,
)

NOW = 1_700_000_000.0
Obj = dict[str, Any]


def deployment(replicas: int = 10, *, surge: int | str | None = 0,
               unavailable: int | str | None = 0, strategy: str = "RollingUpdate",
               status: Obj | None = None, deadline: int | None = None,
               generation: int = 1) -> Obj:
    strategy_obj: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strategy_obj["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": strategy_obj,
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"metadata": {"name": "web", "namespace": "demo", "uid": "d-uid",
                         "generation": generation},
            "spec": spec, "status": status or {}}


def rs(name: str, replicas: int, *, available: int = 0, created: float = NOW,
       annotations: dict[str, str] | None = None, status: Obj | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "demo", "uid": f"uid-{name}",
                         "creationTimestamp": format_time(created),
                         "annotations": dict(annotations or {})},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}}},
            "status": {"availableReplicas": available, **(status or {})}}


def sized(plan: list[plans.Resize]) -> dict[str, int]:
    return {step.rs["metadata"]["name"]: step.replicas for step in plan}


# ---- maxSurge and maxUnavailable


@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("0%", "0%", 0, (0, 1)),       # both zero: one may be unavailable
    ("39%", "39%", 10, (4, 3)),    # surge rounds up, unavailable down
    (None, "39%", 10, (0, 3)),
    ("39%", None, 10, (4, 0)),
    (None, None, 10, (0, 1)),
    (2, 3, 10, (2, 3)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int,
                            expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(("surge", "unavailable"), [("oops", "39%"), ("55%", "urg"),
                                                     ("5", "1")])
def test_resolve_fenceposts_rejects_non_percentages(surge: str, unavailable: str) -> None:
    with pytest.raises(IntOrPercentError):
        resolve_fenceposts(surge, unavailable, 10)


def test_scaled_value_messages() -> None:
    with pytest.raises(IntOrPercentError, match="string is not a percentage"):
        scaled_value("5", 10, round_up=True)
    with pytest.raises(IntOrPercentError, match='invalid value "x%"'):
        scaled_value("x%", 10, round_up=True)
    assert scaled_value("25%", 3, round_up=True) == 1
    assert scaled_value("25%", 3, round_up=False) == 0


@pytest.mark.parametrize(("replicas", "unavailable", "expected_max", "expected_min"), [
    (10, 5, 5, 5), (10, 10, 10, 0), (5, 10, 5, 0), (0, 10, 0, 0),
    (10, "50%", 5, 5), (10, "100%", 10, 0), (5, "100%", 5, 0), (10, "60%", 6, 4),
])
def test_max_unavailable_and_min_available(replicas: int, unavailable: Any,
                                           expected_max: int, expected_min: int) -> None:
    d = deployment(replicas, surge=1, unavailable=unavailable)
    assert max_unavailable(d) == expected_max
    assert min_available(d) == expected_min


def test_recreate_has_no_surge_nor_unavailability() -> None:
    d = deployment(10, strategy="Recreate")
    assert (max_surge(d), max_unavailable(d), min_available(d)) == (0, 0, 0)


def test_the_seed_deployment_rolls_one_pod_at_a_time() -> None:
    d = deployment(3, surge="25%", unavailable="25%")
    assert (max_surge(d), max_unavailable(d)) == (1, 0)


# ---- the new ReplicaSet's size


@pytest.mark.parametrize(("strategy", "desired", "new_size", "surge", "expected"), [
    ("RollingUpdate", 1, 5, 1, 5),    # already over desired + surge: stays
    ("RollingUpdate", 6, 2, 10, 6),   # room enough: straight to desired
    ("Recreate", 3, 1, 1, 3),
])
def test_new_rs_new_replicas(strategy: str, desired: int, new_size: int, surge: int,
                             expected: int) -> None:
    d = deployment(desired, surge=surge, unavailable=1, strategy=strategy)
    new = rs("new", new_size)
    assert new_rs_new_replicas(d, [rs("other", 5)], new) == expected


@pytest.mark.parametrize(("surge", "old", "new", "expected"), [
    (0, 10, 0, 0),    # no room to surge
    (2, 10, 0, 2),
    (2, 5, 0, 7),
    (2, 10, 2, 2),    # already at desired + surge
])
def test_scaling_up_the_new_replica_set(surge: int, old: int, new: int, expected: int) -> None:
    d = deployment(10, surge=surge, unavailable=0)
    new_rs = rs("new", new)
    assert new_rs_new_replicas(d, [new_rs, rs("old", old)], new_rs) == expected


# ---- scaling old ReplicaSets down during a rolling update


@pytest.mark.parametrize(("unavailable", "old", "new", "old_available", "new_available",
                          "expected_old"), [
    (0, 10, 0, 10, 0, 9),    # maxUnavailable 0 with maxSurge 0 resolves to 1
    (2, 10, 0, 10, 0, 8),
    (2, 10, 0, 8, 0, 8),     # the two unavailable old pods go first
    (2, 10, 0, 9, 0, 8),     # one unavailable, then one available
    (2, 8, 2, 8, 0, 8),      # the new pods' unavailability blocks any further step
])
def test_old_replica_sets_scale_down_within_availability(
        unavailable: int, old: int, new: int, old_available: int, new_available: int,
        expected_old: int) -> None:
    d = deployment(10, surge=0, unavailable=unavailable)
    old_rs, new_rs = rs("old", old, available=old_available), rs("new", new,
                                                                  available=new_available)
    budget = plans.max_scaled_down(d, [old_rs, new_rs], new_rs)
    size = old
    if budget > 0:
        for step in plans.unhealthy_cleanup_plan([old_rs], budget):
            size = step.replicas
        cleaned = rs("old", size, available=old_available)
        for step in plans.rolling_scale_down_plan(d, [cleaned, new_rs], [cleaned]):
            size = step.replicas
    assert size == expected_old


@pytest.mark.parametrize(("available", "max_cleanup", "expected"), [
    (8, 1, 1), (8, 3, 2), (8, 0, 0), (10, 3, 0),
])
def test_unhealthy_cleanup(available: int, max_cleanup: int, expected: int) -> None:
    plan = plans.unhealthy_cleanup_plan([rs("old", 10, available=available)], max_cleanup)
    assert sum(10 - step.replicas for step in plan) == expected


@pytest.mark.parametrize(("unavailable", "available", "old", "expected"), [
    (0, 10, 10, 9), (2, 10, 10, 8), (2, 8, 10, None), (2, 10, 0, None), (2, 1, 10, None),
])
def test_rolling_scale_down(unavailable: int, available: int, old: int,
                            expected: int | None) -> None:
    d = deployment(10, surge=0, unavailable=unavailable)
    old_rs = rs("old", old, available=available)
    plan = plans.rolling_scale_down_plan(d, [old_rs], [old_rs])
    assert (plan[0].replicas if plan else None) == expected


def test_scale_down_goes_oldest_first() -> None:
    # 6 available, at least 3 must stay: 3 go, the older ReplicaSet's first.
    d = deployment(4, surge=0, unavailable=1)
    older, old = rs("older", 2, available=2, created=NOW - 20), rs("old", 2, available=2,
                                                                  created=NOW - 10)
    new = rs("new", 2, available=2)
    plan = plans.rolling_scale_down_plan(d, [old, older, new], [old, older])
    assert sized(plan) == {"older": 0, "old": 1}


# ---- proportional scaling (resizing a Deployment mid-rollout)


NEW, OLD, OLDER = NOW, NOW - 3600, NOW - 7200


def annotated(name: str, size: int, before: Obj, *, created: float,
              available: int = 0) -> Obj:
    """A ReplicaSet last scaled for the Deployment `before` (its replica annotations)."""
    result = rs(name, size, created=created, available=available)
    set_replicas_annotations(result, before["spec"]["replicas"],
                             before["spec"]["replicas"] + max_surge(before))
    return result


@pytest.mark.parametrize(("before", "after", "new", "olds", "expected"), [
    # one active ReplicaSet takes the whole size
    (10, 12, ("v1", 10), [], {"v1": 12}),
    (10, 5, ("v1", 10), [], {"v1": 5}),
    # shared in proportion to sizes
    (5, 10, ("v2", 2), [("v1", 3, OLD)], {"v2": 4, "v1": 6}),
    (5, 3, ("v2", 2), [("v1", 3, OLD)], {"v2": 1, "v1": 2}),
    (9, 4, ("v2", 8), [("v1", 1, OLD)], {"v2": 4, "v1": 0}),
    (7, 10, ("v3", 2), [("v2", 3, OLD), ("v1", 2, OLDER)], {"v3": 3, "v2": 4, "v1": 3}),
    (13, 8, ("v3", 2), [("v2", 8, OLD), ("v1", 3, OLDER)], {"v3": 1, "v2": 5, "v1": 2}),
    # leftovers: to the newest when growing, from the oldest when shrinking
    (3, 4, ("v3", 1), [("v2", 1, OLD), ("v1", 1, OLDER)], {"v3": 2, "v2": 1, "v1": 1}),
    (3, 2, ("v3", 1), [("v2", 1, OLD), ("v1", 1, OLDER)], {"v3": 1, "v2": 1, "v1": 0}),
    # no new ReplicaSet yet: the latest grows first (2.5 rounds half away from zero)
    (4, 5, None, [("v2", 2, OLD), ("v1", 2, OLDER)], {"v2": 3, "v1": 2}),
    # down to zero, and up from zero (only the newest grows)
    (6, 0, ("v3", 3), [("v2", 2, OLD), ("v1", 1, OLDER)], {"v3": 0, "v2": 0, "v1": 0}),
    (6, 6, ("v3", 0), [("v2", 0, OLD), ("v1", 0, OLDER)], {"v3": 6}),
])
def test_proportional_scaling(before: int, after: int, new: tuple[str, int] | None,
                              olds: list[tuple[str, int, float]],
                              expected: dict[str, int]) -> None:
    d_before, d_after = deployment(before), deployment(after)
    new_rs = annotated(new[0], new[1], d_before, created=NEW) if new else None
    old_rss = [annotated(name, size, d_before, created=when) for name, size, when in olds]
    plan = plans.scale_plan(d_after, new_rs, old_rss)
    current = {r["metadata"]["name"]: r["spec"]["replicas"] for r in [*old_rss, new_rs] if r}
    resized = {name: size for name, size in sized(plan).items() if size != current[name]}
    assert {**current, **resized} == {**current, **expected}


def test_proportional_scaling_counts_surge() -> None:
    # 10 → 20 with maxSurge 2: room 12 → 22; two ReplicaSets of 6 grow to 11 each.
    before, after = deployment(10, surge=2), deployment(20, surge=2)
    plan = plans.scale_plan(after, annotated("v2", 6, before, created=NEW),
                            [annotated("v1", 6, before, created=OLD)])
    assert sized(plan) == {"v2": 11, "v1": 11}
    # 10 (+3) → 50 (+6): 13 → 56; 8 and 5 become 34 and 22.
    before, after = deployment(10, surge=3), deployment(50, surge=6)
    plan = plans.scale_plan(after, annotated("v2", 5, before, created=NEW),
                            [annotated("v1", 8, before, created=OLD)])
    assert sized(plan) == {"v2": 22, "v1": 34}


def test_a_saturated_but_broken_new_replica_set_leaves_old_pods_alone() -> None:
    d = deployment(2, surge=1, unavailable=1)
    new = annotated("v2", 2, d, created=NEW, available=0)
    old = annotated("v1", 1, d, created=OLD)
    assert sized(plans.scale_plan(d, new, [old])) == {"v2": 2, "v1": 1}


def test_a_saturated_new_replica_set_scales_old_ones_to_zero() -> None:
    d = deployment(2, surge=1, unavailable=1)
    new = annotated("v2", 2, d, created=NEW, available=2)
    assert is_saturated(d, new)
    assert sized(plans.scale_plan(d, new, [annotated("v1", 1, d, created=OLD)])) == {"v1": 0}


@pytest.mark.parametrize(("desired", "status_replicas", "surge", "size", "annotation",
                          "expected"), [
    (0, 0, 0, 10, None, -10),       # scaling to zero takes everything
    (10, 0, 0, 5, None, 0),         # nothing to go by: no estimate
    (10, 0, 0, 5, "0", 0),
    (120, 100, 0, 50, None, 10),    # the pod count stands in for the annotation
    (120, 100, 0, 50, "0", 10),
    (120, 0, 0, 50, "100", 10),
    (120, 0, 10, 50, "110", 9),     # 50 * 130 / 110 = 59.1
    (10, 0, 0, 6, "12", -1),
    (100, 0, 10, 50, "130", -8),    # 50 * 110 / 130 = 42.3
])
def test_replica_set_fraction(desired: int, status_replicas: int, surge: int, size: int,
                              annotation: str | None, expected: int) -> None:
    d = deployment(desired, surge=surge, unavailable=1, status={"replicas": status_replicas})
    annotations = {MAX_REPLICAS: annotation} if annotation is not None else {}
    assert replica_set_fraction(rs("x", size, annotations=annotations), d) == expected


def test_round_half_away_from_zero() -> None:
    assert [round_half_away(v) for v in (2.5, 3.5, -2.5, 2.49, -0.4)] == [3, 4, -3, 2, 0]


@pytest.mark.parametrize(("value", "expected"), [
    ("13", 13), ("0", 0), (str(MAX_INT32), MAX_INT32), (str(MAX_INT32 + 1), None),
    ("-1", None), ("invalid", None), (None, None),
])
def test_int32_annotation(value: str | None, expected: int | None) -> None:
    annotations = {"test": value} if value is not None else {}
    assert int32_annotation(rs("x", 1, annotations=annotations), "test") == expected


def test_scaling_event_detection() -> None:
    d = deployment(5)
    same = annotated("v1", 5, d, created=NEW)
    assert not plans.is_scaling_event(d, same, [])
    assert plans.is_scaling_event(deployment(6), same, [])
    assert not plans.is_scaling_event(deployment(6), rs("bare", 5), [])


# ---- rollout state


@pytest.mark.parametrize(("desired", "current", "updated", "available", "unavailable",
                          "surge", "expected"), [
    (5, 5, 5, 4, 1, 0, False),
    (5, 5, 5, 3, 1, 0, False),
    (5, 5, 5, 5, 0, 0, True),
    (5, 5, 4, 5, 0, 0, False),
    (1, 2, 1, 1, 0, 1, False),   # an old pod still runs
    (1, 1, 1, 0, 1, 1, False),
])
def test_deployment_complete(desired: int, current: int, updated: int, available: int,
                             unavailable: int, surge: int, expected: bool) -> None:
    d = deployment(desired, surge=surge, unavailable=unavailable, generation=0)
    status = {"replicas": current, "updatedReplicas": updated, "availableReplicas": available}
    assert deployment_complete(d, status) is expected


def test_deployment_complete_needs_the_generation_observed() -> None:
    d = deployment(1, generation=2)
    status = {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
              "observedGeneration": 1}
    assert not deployment_complete(d, status)
    assert deployment_complete(d, {**status, "observedGeneration": 2})


@pytest.mark.parametrize(("before", "after", "expected"), [
    ((10, 4, 4, 4), (10, 6, 4, 4), True),     # more updated pods
    ((10, 4, 4, 4), (10, 4, 4, 4), False),
    ((10, 4, 6, 6), (8, 4, 6, 6), True),      # old pods removed
    ((10, 7, 3, 3), (10, 6, 3, 3), False),
    ((10, 4, 7, 7), (8, 8, 5, 5), True),
    ((10, 10, 9, 8), (10, 10, 10, 8), True),  # more ready
    ((10, 10, 10, 9), (10, 10, 10, 10), True),  # more available
])
def test_deployment_progressing(before: tuple[int, ...], after: tuple[int, ...],
                                expected: bool) -> None:
    def counts(values: tuple[int, ...]) -> Obj:
        return dict(zip(("replicas", "updatedReplicas", "readyReplicas", "availableReplicas"),
                        values))

    assert deployment_progressing(deployment(status=counts(before)), counts(after)) is expected


@pytest.mark.parametrize(("deadline", "updated_ago", "reason", "expected"), [
    (None, 11, "", False),
    (MAX_INT32, 11, "", False),
    (10, 11, "", True),
    (10, 9, "", False),
    (10, 1000, "NewReplicaSetAvailable", False),
    (10, 0, "ProgressDeadlineExceeded", True),
])
def test_deployment_timed_out(deadline: int | None, updated_ago: int, reason: str,
                              expected: bool) -> None:
    d = deployment(deadline=deadline)
    condition = {"type": PROGRESSING, "status": "True", "reason": reason,
                 "lastUpdateTime": format_time(NOW - updated_ago)}
    assert deployment_timed_out(d, {"conditions": [condition]}, NOW) is expected


# ---- conditions


def test_set_condition_rules() -> None:
    status: Obj = {}
    first = new_condition(PROGRESSING, "True", "A", "one", NOW)
    set_condition(status, first)
    assert status["conditions"] == [first]
    set_condition(status, new_condition(PROGRESSING, "True", "A", "again", NOW + 5))
    assert status["conditions"] == [first]                # same status and reason: kept
    set_condition(status, new_condition(PROGRESSING, "True", "B", "two", NOW + 10))
    [moved] = status["conditions"]
    assert moved["reason"] == "B" and moved["lastUpdateTime"] == format_time(NOW + 10)
    assert moved["lastTransitionTime"] == format_time(NOW)  # status unchanged: no transition
    set_condition(status, new_condition(AVAILABLE, "False", "C", "three", NOW))
    assert [c["type"] for c in status["conditions"]] == [PROGRESSING, AVAILABLE]
    remove_condition(status, PROGRESSING)
    remove_condition(status, AVAILABLE)
    assert status == {}


# ---- ReplicaSets: matching, revisions, annotations


def template(labels: dict[str, str], node: str = "n1", annotations: Obj | None = None) -> Obj:
    return {"metadata": {"labels": labels, "annotations": annotations or {}},
            "spec": {"nodeName": node}}


@pytest.mark.parametrize(("a", "b", "expected"), [
    (template({"pod-template-hash": "1", "x": "y"}), template({"pod-template-hash": "2",
                                                              "x": "y"}), True),
    (template({"x": "y"}), template({"pod-template-hash": "2", "x": "y"}), True),
    (template({"x": "y"}), template({"pod-template-hash": "2"}), False),
    (template({"pod-template-hash": "1"}), template({"pod-template-hash": "1", "x": "y"}),
     False),
    (template({"x": "y"}, annotations={"a": "1"}), template({"x": "y"},
                                                           annotations={"b": "1"}), False),
    (template({"x": "y"}, node="n1"), template({"x": "y"}, node="n2"), False),
])
def test_equal_ignore_hash(a: Obj, b: Obj, expected: bool) -> None:
    assert equal_ignore_hash(a, b) is expected
    assert equal_ignore_hash(b, a) is expected
    assert "pod-template-hash" in a["metadata"]["labels"] or "x" in a["metadata"]["labels"]


def test_empty_and_missing_fields_compare_equal() -> None:
    assert equal_ignore_hash({"metadata": {"labels": {"x": "y"}, "annotations": {}},
                              "spec": {"volumes": []}},
                             {"metadata": {"labels": {"x": "y"}}, "spec": {}})


def test_find_new_and_old_replica_sets() -> None:
    d = deployment()
    current = d["spec"]["template"]
    newer = {**rs("newer", 1, created=NOW), "spec": {"replicas": 1, "template": current}}
    older_dup = {**rs("dup", 0, created=NOW - 60), "spec": {"replicas": 0,
                                                           "template": current}}
    old = rs("old", 0, created=NOW - 120)
    assert find_new_replica_set(d, [newer, old]) is newer
    assert find_new_replica_set(d, [newer, old, older_dup]) is older_dup  # the oldest match
    assert find_new_replica_set(d, [old]) is None
    required, every = find_old_replica_sets(d, [old, newer, older_dup])
    assert [r["metadata"]["name"] for r in every] == ["old", "newer"]
    assert [r["metadata"]["name"] for r in required] == ["newer"]


def test_orderings() -> None:
    a = rs("a", 2, created=NOW - 10, annotations={REVISION: "3"})
    b = rs("b", 2, created=NOW, annotations={REVISION: "1"})
    c = rs("c", 5, created=NOW - 5, annotations={REVISION: "bad"})
    assert [r["metadata"]["name"] for r in by_size_newer([a, b, c])] == ["c", "b", "a"]
    assert [r["metadata"]["name"] for r in by_size_older([a, b, c])] == ["c", "a", "b"]
    assert [r["metadata"]["name"] for r in by_revision([a, b])] == ["b", "a"]


def test_revision_history_grows_and_stays_within_its_limit() -> None:
    d = deployment()
    d["metadata"]["annotations"] = {REVISION: "1", "kubernetes.io/change-cause": "why"}
    target = rs("x", 1)
    for i in range(10, 20):
        set_new_replica_set_annotations(d, target, str(i + 1), exists=True, history_limit=5)
        annotations = target["metadata"]["annotations"]
        assert annotations[REVISION] == str(i + 1)
        if i >= 12:
            assert annotations[REVISION_HISTORY] == f"{i - 1},{i}"
    assert target["metadata"]["annotations"]["kubernetes.io/change-cause"] == "why"
    # A revision never goes down.
    assert not set_new_replica_set_annotations(d, target, "5", exists=True)
    assert target["metadata"]["annotations"][REVISION] == "20"


def test_replica_annotations() -> None:
    target = rs("x", 1)
    assert replicas_annotations_need_update(target, 10, 20)
    assert set_replicas_annotations(target, 10, 11)
    assert target["metadata"]["annotations"][DESIRED_REPLICAS] == "10"
    assert target["metadata"]["annotations"][MAX_REPLICAS] == "11"
    assert not set_replicas_annotations(target, 10, 11)
    assert replicas_annotations_need_update(target, 10, 20)


def test_new_replica_set_shape() -> None:
    d = deployment(3)
    d["spec"]["minReadySeconds"] = 5
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid",
           "controller": True, "blockOwnerDeletion": True}
    made = new_replica_set(d, ref)
    pod_hash = compute_hash(d["spec"]["template"])
    assert made["metadata"]["name"] == f"web-{pod_hash}"
    labels = {"app": "web", "pod-template-hash": pod_hash}
    assert made["metadata"]["labels"] == labels
    assert made["metadata"]["ownerReferences"] == [ref]
    assert made["spec"]["selector"] == {"matchLabels": labels}
    assert made["spec"]["template"]["metadata"]["labels"] == labels
    assert made["spec"]["minReadySeconds"] == 5 and made["spec"]["replicas"] == 0
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "web"}  # untouched


# ---- the pod-template-hash


def test_fnv32a_known_values() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32a(b"foobar") == 0xBF9CF968


def test_hash_shape_and_stability() -> None:
    assert safe_encode("0123456789") == "456789bcdf"
    tpl = deployment()["spec"]["template"]
    first = compute_hash(tpl)
    assert first == compute_hash({"spec": tpl["spec"], "metadata": tpl["metadata"]})
    assert 1 <= len(first) <= 10 and set(first) <= set("456789bcdf")
    assert compute_hash(tpl, 1) != first and compute_hash(tpl, 1) != compute_hash(tpl, 2)
    assert compute_hash(tpl, 0) != first


# ---- status


def test_calculate_status_counts_and_availability() -> None:
    d = deployment(3, surge=1, unavailable=0, generation=4,
                   status={"collisionCount": 0})
    old = rs("old", 1, available=1, status={"replicas": 1, "readyReplicas": 1})
    new = rs("new", 3, available=1, status={"replicas": 3, "readyReplicas": 2})
    status = calculate_status([old, new], new, d, NOW)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 4, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 3,
        "availableReplicas": 2, "unavailableReplicas": 2, "collisionCount": 0}
    [available] = status["conditions"]
    assert available == new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                                      "Deployment does not have minimum availability.", NOW)
    done = calculate_status([rs("new", 3, available=3, status={"replicas": 3})], None, d, NOW)
    assert get_condition(done, AVAILABLE)["message"] == "Deployment has minimum availability."


def test_progressing_condition_through_a_rollout() -> None:
    d = deployment(3, surge=1, unavailable=0, deadline=600)
    set_condition(d["status"], new_condition(PROGRESSING, "True", "NewReplicaSetCreated",
                                             'Created new replica set "web-1"', NOW - 100))
    new = {**rs("web-1", 1, available=0, status={"replicas": 1}),
           "metadata": {"name": "web-1", "uid": "u1"}}
    old = rs("web-0", 3, available=3, status={"replicas": 3, "readyReplicas": 3})
    moving = rollout_status(d, [old, new], new, NOW)
    progressing = get_condition(moving, PROGRESSING)
    assert progressing["reason"] == "ReplicaSetUpdated"
    assert progressing["message"] == 'ReplicaSet "web-1" is progressing.'
    assert progressing["lastTransitionTime"] == format_time(NOW - 100)
    assert progressing["lastUpdateTime"] == format_time(NOW)
    # No progress for longer than the deadline: timed out.
    d["status"] = moving
    stalled = rollout_status(d, [old, new], new, NOW + 601)
    assert get_condition(stalled, PROGRESSING)["reason"] == "ProgressDeadlineExceeded"
    assert get_condition(stalled, PROGRESSING)["message"] == \
        'ReplicaSet "web-1" has timed out progressing.'
    assert get_condition(stalled, PROGRESSING)["status"] == "False"
    # Done: every pod new and available.
    finished_new = {**new, "spec": {"replicas": 3},
                    "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3}}
    done = rollout_status(d, [finished_new], finished_new, NOW + 5)
    assert get_condition(done, PROGRESSING)["reason"] == "NewReplicaSetAvailable"
    assert get_condition(done, PROGRESSING)["message"] == \
        'ReplicaSet "web-1" has successfully progressed.'


def test_progressing_is_dropped_without_a_deadline_and_failures_are_mirrored() -> None:
    d = deployment(1)
    set_condition(d["status"], new_condition(PROGRESSING, "True", "X", "x", NOW))
    failure = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
               "message": "quota", "lastTransitionTime": format_time(NOW)}
    new = rs("new", 1, status={"conditions": [failure]})
    status = rollout_status(d, [new], new, NOW)
    assert get_condition(status, PROGRESSING) is None
    mirrored = get_condition(status, "ReplicaFailure")
    assert mirrored["reason"] == "FailedCreate" and mirrored["lastUpdateTime"] == \
        format_time(NOW)


def test_requeue_delay_for_the_progress_check() -> None:
    d = deployment(3, deadline=600)
    assert requeue_delay(d, {}, NOW) is None   # no Progressing condition yet
    set_condition(d["status"], new_condition(PROGRESSING, "True", "ReplicaSetUpdated", "x",
                                             NOW - 180))
    assert requeue_delay(d, {}, NOW) == 421.0   # 7 minutes left, plus a second
    assert requeue_delay(d, {}, NOW + 420) == 0.0
    complete = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                "observedGeneration": 1}
    assert requeue_delay(d, complete, NOW) is None


# ---- history and Recreate


def test_history_to_delete_keeps_the_limit_and_busy_replica_sets() -> None:
    d = deployment()
    d["spec"]["revisionHistoryLimit"] = 1
    olds = [rs(f"r{i}", 0, annotations={REVISION: str(i)}) for i in (1, 2, 3)]
    olds[0]["status"]["replicas"] = 1   # still has a pod: spared
    assert [r["metadata"]["name"] for r in plans.history_to_delete(d, olds)] == ["r2"]
    d["spec"]["revisionHistoryLimit"] = MAX_INT32
    assert plans.history_to_delete(d, olds) == []


def test_old_pods_running() -> None:
    new = rs("new", 3)
    old = rs("old", 0)
    running = {"status": {"phase": "Running"}}
    done = {"status": {"phase": "Succeeded"}}
    assert not plans.old_pods_running(new, [old], {"uid-new": [running], "uid-old": [done]})
    assert plans.old_pods_running(new, [old], {"uid-old": [running]})
    assert plans.old_pods_running(None, [old], {"uid-new": [{"status": {"phase": "Unknown"}}]})
    old["status"]["replicas"] = 1
    assert plans.old_pods_running(new, [old], {})
