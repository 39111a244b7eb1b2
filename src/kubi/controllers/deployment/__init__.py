"""The Deployment controller, split by concern as upstream's is.

- `controller`: informer handlers and the sync dispatch.
- `sync`: steps every sync shares (new ReplicaSet and revisions, scaling,
  revision history, status); `rolling` and `recreate`: the two strategies;
  `progress`: the Progressing condition and the progress-deadline requeue.
- `actions`: every write, event and requeue, behind one class.
- `plans`, `status`, `util`, `replicasets`, `conditions`, `hashing`: the
  decisions and the arithmetic, as pure functions on plain dicts.

`deployment_controller(ctx)` builds the controller for the controller manager.
"""

from kubi.controllers.deployment.controller import DeploymentController, deployment_controller

__all__ = ["DeploymentController", "deployment_controller"]
