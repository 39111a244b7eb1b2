"""The mutating admission plugins on plain pods: Priority, ServiceAccount (the
account's name, its existence, the kube-api-access volume, imagePullSecrets)
and DefaultTolerationSeconds, each also turned off."""

from __future__ import annotations

import asyncio
import copy
import re

import pytest

from kubi.api import catalog, hooks
from kubi.api.errors import Forbidden
from kubi.apiserver.admission import (
    DEFAULT_ACCOUNT_ATTEMPTS,
    TOKEN_MOUNT_PATH,
    Admission,
    token_volume_source,
)

hooks.load()
PODS = catalog.lookup("", "v1", "pods")
SECRETS = catalog.lookup("", "v1", "secrets")


def pod(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


class Accounts:
    """ServiceAccounts by (namespace, name); counts lookups; sleeps without waiting."""

    def __init__(self, *accounts: dict) -> None:
        self.known = {(a["metadata"]["namespace"], a["metadata"]["name"]): a for a in accounts}
        self.lookups = 0
        self.slept: list[float] = []

    def lookup(self, namespace: str, name: str) -> dict | None:
        self.lookups += 1
        return self.known.get((namespace, name))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def admission(self, disabled: tuple[str, ...] = ()) -> Admission:
        return Admission(self.lookup, disabled=disabled, sleep=self.sleep)


def account(name: str = "default", **fields) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "demo"}, **fields}


def admit(admission: Admission, obj: dict) -> dict:
    asyncio.run(admission.admit_create(PODS, obj))
    return obj


def test_a_pod_runs_as_default_and_mounts_its_token_everywhere() -> None:
    obj = pod(initContainers=[{"name": "init", "image": "busybox"}])
    admit(Accounts(account()).admission(), obj)
    spec = obj["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    [volume] = spec["volumes"]
    assert re.fullmatch(r"kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}", volume["name"])
    assert volume["projected"] == token_volume_source()
    assert volume["projected"]["defaultMode"] == 420
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    mount = {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
    assert spec["initContainers"][0]["volumeMounts"] == [mount]
    assert spec["containers"][0]["volumeMounts"] == [mount]


def test_a_container_with_its_own_mount_at_the_token_path_keeps_it() -> None:
    own = {"name": "mine", "mountPath": TOKEN_MOUNT_PATH}
    obj = pod(volumes=[{"name": "mine", "emptyDir": {}}])
    obj["spec"]["containers"][0]["volumeMounts"] = [own]
    admit(Accounts(account()).admission(), obj)
    assert obj["spec"]["containers"][0]["volumeMounts"] == [own]
    assert [v["name"] for v in obj["spec"]["volumes"]] == ["mine"]


def test_an_existing_token_volume_is_reused() -> None:
    existing = {"name": "kube-api-access-abcde", "projected": token_volume_source()}
    obj = pod(volumes=[existing])
    admit(Accounts(account()).admission(), obj)
    assert obj["spec"]["volumes"] == [existing]
    assert obj["spec"]["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


@pytest.mark.parametrize(("pod_says", "account_says", "mounted"), [
    (None, None, True), (False, None, False), (None, False, False), (True, False, True),
    (False, True, False),
])
def test_the_pod_chooses_over_the_account_whether_to_mount(
        pod_says: bool | None, account_says: bool | None, mounted: bool) -> None:
    obj = pod() if pod_says is None else pod(automountServiceAccountToken=pod_says)
    sa = account() if account_says is None else account(automountServiceAccountToken=account_says)
    admit(Accounts(sa).admission(), obj)
    assert bool(obj["spec"].get("volumes")) is mounted
    assert obj["spec"]["serviceAccountName"] == "default"


def test_the_accounts_image_pull_secrets_fill_an_empty_list_only() -> None:
    sa = account("builder", imagePullSecrets=[{"name": "registry"}])
    obj = admit(Accounts(sa).admission(), pod(serviceAccountName="builder"))
    assert obj["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    own = admit(Accounts(sa).admission(),
                pod(serviceAccountName="builder", imagePullSecrets=[{"name": "mine"}]))
    assert own["spec"]["imagePullSecrets"] == [{"name": "mine"}]


def test_a_missing_default_account_is_waited_for_then_forbidden() -> None:
    accounts = Accounts()
    with pytest.raises(Forbidden) as caught:
        admit(accounts.admission(), pod())
    assert caught.value.message == ('pods "web" is forbidden: error looking up service account '
                                    'demo/default: serviceaccount "default" not found')
    assert caught.value.code == 403
    assert accounts.lookups == DEFAULT_ACCOUNT_ATTEMPTS
    assert len(accounts.slept) == DEFAULT_ACCOUNT_ATTEMPTS - 1
    assert all(0.1 <= s <= 0.2 for s in accounts.slept)


def test_a_missing_named_account_is_forbidden_at_once() -> None:
    accounts = Accounts(account())
    with pytest.raises(Forbidden, match='serviceaccount "robot" not found'):
        admit(accounts.admission(), pod(serviceAccountName="robot"))
    assert (accounts.lookups, accounts.slept) == (1, [])


def test_the_default_account_made_meanwhile_admits_the_pod() -> None:
    accounts = Accounts()

    async def made_after_a_while(seconds: float) -> None:
        accounts.slept.append(seconds)
        if len(accounts.slept) == 3:
            accounts.known[("demo", "default")] = account()

    admission = Admission(accounts.lookup, sleep=made_after_a_while)
    obj = admit(admission, pod())
    assert accounts.lookups == 4
    assert obj["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


def test_mirror_pods_are_left_alone() -> None:
    obj = pod(nodeName="n1")
    obj["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    before = copy.deepcopy(obj)
    admit(Accounts().admission(("DefaultTolerationSeconds", "Priority")), obj)
    assert obj == before


def test_malformed_specs_are_left_to_validation() -> None:
    for spec in ({"containers": "nope"}, {"containers": ["nope"]}, {"volumes": {"a": 1}},
                 {"containers": [{"name": "c", "volumeMounts": "x"}]}):
        obj = {"metadata": {"name": "web", "namespace": "demo"}, "spec": spec}
        admit(Accounts(account()).admission(), obj)


def test_each_plugin_can_be_turned_off() -> None:
    no_accounts = admit(Accounts().admission(("ServiceAccount",)), pod())
    assert "serviceAccountName" not in no_accounts["spec"]
    assert "volumes" not in no_accounts["spec"]
    assert len(no_accounts["spec"]["tolerations"]) == 2
    no_tolerations = admit(Accounts(account()).admission(("DefaultTolerationSeconds",)), pod())
    assert "tolerations" not in no_tolerations["spec"]
    assert no_tolerations["spec"]["serviceAccountName"] == "default"


def test_other_kinds_pass_untouched() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    before = copy.deepcopy(secret)
    asyncio.run(Accounts().admission().admit_create(SECRETS, secret))
    assert secret == before


@pytest.mark.parametrize(("spec", "priority"), [
    ({}, 0), ({"priorityClassName": "system-node-critical"}, 2000001000),
    ({"priority": 7}, 7), ({"priorityClassName": "custom"}, None),
])
def test_a_pod_gets_its_classes_priority(spec: dict, priority: int | None) -> None:
    obj = admit(Accounts(account()).admission(), pod(**spec))
    assert obj["spec"].get("priority") == priority
    assert obj["spec"].get("preemptionPolicy") == (
        None if priority is None else "PreemptLowerPriority")
    off = admit(Accounts(account()).admission(("Priority",)), pod(**spec))
    assert off["spec"].get("priority") == spec.get("priority")
