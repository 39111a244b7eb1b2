"""Writing a StatefulSet's pods and claims, with the events upstream records.

Every pod write becomes an event on the set: `SuccessfulCreate` "create Pod
web-0 in StatefulSet web successful", or `FailedCreate` "create Pod web-0 in
StatefulSet web failed error: <error>" (likewise Update and Delete); every
claim created becomes `SuccessfulCreate` "create Claim www-web-0 Pod web-0 in
StatefulSet web success". Claims are created before their pod, and their
ownerReferences set after it, as the retention policy asks. Existing claims
are read from the claim informer's cache; one the cache has not caught up
with yet (the API answers AlreadyExists) is taken as present.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.controllers.events import NORMAL, WARNING, EventRecorder
from kubi.controllers.informers import IndexedInformer
from kubi.controllers.podcontrol import PODS
from kubi.controllers.statefulset.identity import (
    API_VERSION,
    KIND,
    claim_name,
    claim_templates,
    claims_for_ordinal,
    identity_matches,
    name_of,
    ordinal,
    storage_matches,
    with_identity,
    with_storage,
)
from kubi.controllers.statefulset.retention import (
    ClaimLookup,
    claim_owner_up_to_date,
    claims_match_policy,
    has_unexpected_controller,
    updated_owner_refs,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PVCS = Resource("", "v1", "persistentvolumeclaims", True, "PersistentVolumeClaim")
POD_UPDATE_RETRIES = 4


class ClaimErrors(Exception):
    """One or more claims of a pod could not be made ready; reads like Go's aggregate."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        text = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
        super().__init__(text)


class StatefulPodControl:
    def __init__(self, client: Client, recorder: EventRecorder, *, pods: IndexedInformer,
                 claims: IndexedInformer) -> None:
        self.client = client
        self.recorder = recorder
        self.pods = pods
        self.claims = claims

    # ---- reads

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.get(f"{namespace}/{name}")

    def lookup(self, namespace: str, extra: Mapping[str, Obj] | None = None) -> ClaimLookup:
        """A claim-by-name reader over the cache (and claims this sync just created)."""
        def read(name: str) -> Obj | None:
            if extra and name in extra:
                return extra[name]
            return self.claim(namespace, name)
        return read

    # ---- pods

    async def create_pod(self, sts: Obj, pod: Obj) -> Obj:
        """The pod's claims, then the pod, then the claims' owners."""
        try:
            made = await self._create_claims(sts, pod)
        except ClaimErrors as err:
            self._pod_event("create", sts, pod, err)
            raise
        try:
            created = await self.client.create(PODS, pod, _namespace(sts))
        except StatusError as err:
            if err.reason != "AlreadyExists":
                self._pod_event("create", sts, pod, err)
            raise
        try:
            await self.fix_claim_owners(sts, created, made)
        except Exception as err:
            self._pod_event("update", sts, created, err)
            raise
        self._pod_event("create", sts, created, None)
        return created

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        try:
            await self.client.delete(PODS, name_of(pod), _namespace(sts))
        except StatusError as err:
            self._pod_event("delete", sts, pod, err)
            raise
        self._pod_event("delete", sts, pod, None)

    async def update_pod(self, sts: Obj, pod: Obj) -> None:
        """Give the pod back its identity, storage and claim owners, retrying conflicts."""
        pod = copy.deepcopy(pod)
        attempted = False
        error: Exception | None = None
        for attempt in range(POD_UPDATE_RETRIES):
            consistent = True
            if not identity_matches(sts, pod):
                pod, consistent = with_identity(sts, pod), False
            if not storage_matches(sts, pod):
                pod, consistent = with_storage(sts, pod), False
                try:
                    await self._create_claims(sts, pod)
                except ClaimErrors as err:
                    self._pod_event("update", sts, pod, err)
                    raise
            if not claims_match_policy(sts, pod, self.lookup(_namespace(sts))):
                try:
                    await self.fix_claim_owners(sts, pod)
                except Exception as err:
                    self._pod_event("update", sts, pod, err)
                    raise
                consistent = False
            if consistent:
                return
            attempted = True
            try:
                await self.client.replace(PODS, {"apiVersion": "v1", "kind": "Pod", **pod})
                error = None
                break
            except StatusError as err:
                error = err
                if err.code != 409 or attempt == POD_UPDATE_RETRIES - 1:
                    break
            fresh = self.pods.get(f"{_namespace(sts)}/{name_of(pod)}")
            if fresh is not None:
                pod = copy.deepcopy(fresh)
        if attempted:
            self._pod_event("update", sts, pod, error)
        if error is not None:
            raise error

    # ---- claims

    async def create_missing_claims(self, sts: Obj, pod: Obj) -> None:
        """A pending pod whose claims went missing gets them back, with their owners."""
        made = await self._create_claims(sts, pod)
        try:
            await self.fix_claim_owners(sts, pod, made)
        except Exception as err:
            self._pod_event("update", sts, pod, err)
            raise

    async def fix_claim_owners(self, sts: Obj, pod: Obj,
                               known: Mapping[str, Obj] | None = None) -> None:
        """Point each existing claim's ownerReferences where the retention policy says."""
        namespace = _namespace(sts)
        read = self.lookup(namespace, known)
        for template in claim_templates(sts):
            name = claim_name(sts, template, ordinal(pod))
            claim = read(name)
            if claim is None:
                continue  # not seen yet: a later sync picks it up
            if has_unexpected_controller(claim, sts, pod):
                self.recorder.event(
                    sts, WARNING, "ConflictingController",
                    f"PersistentVolumeClaim {name} has a conflicting OwnerReference that acts "
                    "as a manging controller, the retention policy is ignored for this claim",
                    kind=KIND, api_version=API_VERSION)
            if claim_owner_up_to_date(claim, sts, pod):
                continue
            body = copy.deepcopy(claim)
            body["metadata"]["ownerReferences"] = updated_owner_refs(claim, sts, pod)
            try:
                await self.client.replace(
                    PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **body})
            except StatusError as err:
                raise RuntimeError(f"could not update claim {name} for delete policy "
                                   f"ownerRefs: {err}") from err

    async def _create_claims(self, sts: Obj, pod: Obj) -> dict[str, Obj]:
        """Create the claims the pod's ordinal lacks; returns those created, by name."""
        namespace = _namespace(sts)
        made: dict[str, Obj] = {}
        problems: list[str] = []
        for claim in claims_for_ordinal(sts, ordinal(pod)).values():
            name = name_of(claim)
            existing = self.claim(namespace, name)
            if existing is not None:
                if (existing.get("metadata") or {}).get("deletionTimestamp"):
                    problems.append(f"pvc {name} is being deleted")
                continue
            try:
                made[name] = await self.client.create(PVCS, claim, namespace)
            except StatusError as err:
                if err.reason == "AlreadyExists":
                    continue
                problems.append(f"failed to create PVC {name}: {err}")
                self._claim_event(sts, pod, name, err)
                continue
            self._claim_event(sts, pod, name, None)
        if problems:
            raise ClaimErrors(problems)
        return made

    # ---- events

    def _pod_event(self, verb: str, sts: Obj, pod: Obj, err: Exception | None) -> None:
        title = verb.capitalize()
        if err is None:
            self.recorder.event(sts, NORMAL, f"Successful{title}",
                                f"{verb} Pod {name_of(pod)} in StatefulSet {name_of(sts)} "
                                "successful", kind=KIND, api_version=API_VERSION)
        else:
            self.recorder.event(sts, WARNING, f"Failed{title}",
                                f"{verb} Pod {name_of(pod)} in StatefulSet {name_of(sts)} "
                                f"failed error: {err}", kind=KIND, api_version=API_VERSION)

    def _claim_event(self, sts: Obj, pod: Obj, claim: str, err: Exception | None) -> None:
        if err is None:
            self.recorder.event(sts, NORMAL, "SuccessfulCreate",
                                f"create Claim {claim} Pod {name_of(pod)} in StatefulSet "
                                f"{name_of(sts)} success", kind=KIND, api_version=API_VERSION)
        else:
            self.recorder.event(sts, WARNING, "FailedCreate",
                                f"create Claim {claim} for Pod {name_of(pod)} in StatefulSet "
                                f"{name_of(sts)} failed error: {err}",
                                kind=KIND, api_version=API_VERSION)


def _namespace(sts: Obj) -> str:
    return str((sts.get("metadata") or {}).get("namespace") or "")
