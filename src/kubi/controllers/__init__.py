"""kubi.controllers: the controller manager and the controllers it runs.

The building blocks (work queue, event recorder, leader election, shared
indexed informers, expectations, pod ownership) serve every controller;
`ControllerManager` runs a set of controllers under leader election, and
`default_controllers()` lists the ones `kubi up` starts.
"""

from kubi.controllers.events import EventBroadcaster, EventRecorder
from kubi.controllers.informers import IndexedInformer, SharedInformers
from kubi.controllers.leader import LeaderElector
from kubi.controllers.manager import ControllerContext, ControllerFactory, ControllerManager
from kubi.controllers.replicaset import replicaset_controller, replication_controller
from kubi.controllers.workqueue import QueueShutDown, WorkQueue


def default_controllers() -> list[ControllerFactory]:
    return [replicaset_controller, replication_controller]


__all__ = [
    "ControllerContext",
    "ControllerFactory",
    "ControllerManager",
    "EventBroadcaster",
    "EventRecorder",
    "IndexedInformer",
    "LeaderElector",
    "QueueShutDown",
    "SharedInformers",
    "WorkQueue",
    "default_controllers",
    "replicaset_controller",
    "replication_controller",
]
