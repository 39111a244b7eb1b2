"""The StatefulSet controller: pods with stable names, storage and order.

A StatefulSet `web` with 3 replicas owns pods `web-0`..`web-2`, each with its
own PersistentVolumeClaims, created lowest ordinal first (each once the one
before is Running and Ready, unless podManagementPolicy is Parallel), removed
highest first, and replaced under the same name when they go. Modules:
`identity`, `revisions`/`history` (ControllerRevisions), `retention` (claim
owners), `plan` (what a sync does), `status`, `statefulpods` (writes and
their events), `control` (one sync) and `controller` (handlers, queue).
"""

from kubi.controllers.statefulset.controller import StatefulSetController, statefulset_controller

__all__ = ["StatefulSetController", "statefulset_controller"]
