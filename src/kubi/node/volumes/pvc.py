"""persistentVolumeClaim and ephemeral volumes: mount the PersistentVolume bound to a claim.

The claim must exist, not be deleting, be Bound and name its volume; the volume
must point back at the claim (`claimRef.uid`). This node can mount a PV whose
source is `hostPath` (checked as a hostPath volume is) or `local` (the path must
exist); any other source is a FailedMount naming it. A generic ephemeral volume
uses the claim `<pod name>-<volume name>`, which must be owned by the pod. The
error texts are the kubelet volume manager's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes import hostpath
from kubi.node.volumes.base import MountError, VolumeContext

_MOUNTABLE = ("hostPath", "local")


def claim_name(pod: Mapping[str, Any], volume: Mapping[str, Any]) -> str:
    if volume.get("ephemeral") is not None:
        return f"{(pod.get('metadata') or {}).get('name', '')}-{volume['name']}"
    return (volume.get("persistentVolumeClaim") or {}).get("claimName", "")


async def bound_volume(pod: Mapping[str, Any], volume: Mapping[str, Any],
                       ctx: VolumeContext) -> dict[str, Any]:
    """The PersistentVolume bound to the volume's claim, after upstream's checks."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    name = claim_name(pod, volume)

    def fail(message: str) -> MountError:
        return MountError(volume["name"], message)

    pvc = await ctx.get_pvc(namespace, name)
    if pvc is None:
        raise fail(f"failed to fetch PVC {namespace}/{name} from API server. "
                   f'err=persistentvolumeclaims "{name}" not found')
    pvc_meta = pvc.get("metadata") or {}
    if volume.get("ephemeral") is not None and not _owned_by(pvc_meta, meta.get("uid")):
        raise fail(f"PVC {namespace}/{name} was not created for pod "
                   f"{namespace}/{meta.get('name', '')} (pod is not owner)")
    if pvc_meta.get("deletionTimestamp"):
        raise fail(f"can't start pod because PVC {namespace}/{name} is being deleted")
    phase = (pvc.get("status") or {}).get("phase", "")
    pv_name = (pvc.get("spec") or {}).get("volumeName", "")
    if phase != "Bound" or not pv_name:
        raise fail(f'PVC {namespace}/{name} has non-bound phase ("{phase}") '
                   f'or empty pvc.Spec.VolumeName ("{pv_name}")')
    pv = await ctx.get_pv(pv_name)
    if pv is None:
        raise fail(f'failed to fetch PV "{pv_name}" from API server. '
                   f'err=persistentvolumes "{pv_name}" not found')
    claim_ref = (pv.get("spec") or {}).get("claimRef")
    if not claim_ref:
        raise fail(f'found PV object "{pv_name}" but it has a nil pv.Spec.ClaimRef '
                   "indicating it is not yet bound to the claim")
    claim_uid = pvc_meta.get("uid", "")
    if claim_ref.get("uid", "") != claim_uid:
        raise fail(f'found PV object "{pv_name}" but its pv.Spec.ClaimRef.UID '
                   f'("{claim_ref.get("uid", "")}") does not point to claim.UID ("{claim_uid}")')
    return pv


def _owned_by(meta: Mapping[str, Any], uid: str | None) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in meta.get("ownerReferences") or [])


async def setup(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                ctx: VolumeContext) -> str:
    pv = await bound_volume(pod, volume, ctx)
    pv_name = (pv.get("metadata") or {}).get("name", "")
    spec = pv.get("spec") or {}
    if spec.get("hostPath") is not None:
        return await hostpath.setup_source(pv_name, spec["hostPath"])
    if spec.get("local") is not None:
        path = spec["local"].get("path", "")
        if not await asyncio.to_thread(os.path.exists, path):
            raise MountError(pv_name, f'path "{path}" does not exist')
        return path
    sources = [k for k, v in spec.items() if isinstance(v, dict) and k not in (
        "capacity", "claimRef", "nodeAffinity")]
    kind = sources[0] if sources else "unknown"
    raise MountError(pv_name, f'persistent volume "{pv_name}" uses a {kind} source; '
                              f"this node mounts only {' and '.join(_MOUNTABLE)} volumes")
