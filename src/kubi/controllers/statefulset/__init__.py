"""The StatefulSet controller: pods with stable names, storage and order.

A StatefulSet `web` with 3 replicas owns pods `web-0`, `web-1`, `web-2`, each
with its own PersistentVolumeClaims, created lowest ordinal first (each once
the previous one is Running and Ready, unless podManagementPolicy is
Parallel), removed highest first, and replaced under the same name when they
go. Template changes are recorded as ControllerRevisions and rolled out from
the highest ordinal down to the partition (RollingUpdate), or only to pods
that get deleted (OnDelete). The modules: `identity` (names, ordinals, the
pods to create), `revisions` and `history` (ControllerRevisions), `retention`
(claim ownership), `plan` (what a sync does), `status`, `statefulpods` (pod
and claim writes with their events), `control` (one sync) and `controller`
(handlers and the work queue).
"""

from kubi.controllers.statefulset.controller import StatefulSetController, statefulset_controller

__all__ = ["StatefulSetController", "statefulset_controller"]
