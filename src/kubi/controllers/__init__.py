"""kubi.controllers: the controller manager and the controllers it runs.

The building blocks (work queue, event recorder, leader election, shared
indexed informers, expectations, pod ownership) serve every controller;
`ControllerManager` runs a set of controllers under leader election, and
`default_controllers()` lists the ones `kubi up` starts.
"""

import functools

from kubi.controllers.events import EventBroadcaster, EventRecorder
from kubi.controllers.informers import IndexedInformer, SharedInformers
from kubi.controllers.leader import LeaderElector
from kubi.controllers.manager import ControllerContext, ControllerFactory, ControllerManager
from kubi.controllers.replicaset import replicaset_controller, replication_controller
from kubi.controllers.workqueue import QueueShutDown, WorkQueue


def default_controllers(ca_pem: bytes | None = None) -> list[ControllerFactory]:
    """The controllers `kubi up` runs; `ca_pem` is the cluster CA that the
    root-CA publisher puts in every namespace's `kube-root-ca.crt`."""
    from kubi.controllers.deployment import deployment_controller
    from kubi.controllers.endpoints import endpoints_controller
    from kubi.controllers.endpointslice import endpointslice_controller
    from kubi.controllers.garbagecollector import garbagecollector_controller
    from kubi.controllers.namespace import namespace_controller
    from kubi.controllers.nodeipam import nodeipam_controller
    from kubi.controllers.nodelifecycle import nodelifecycle_controller
    from kubi.controllers.rootcacert import root_ca_publisher
    from kubi.controllers.serviceaccounts import serviceaccounts_controller
    from kubi.controllers.statefulset import statefulset_controller
    from kubi.controllers.tainteviction import taint_eviction_controller

    factories: list[ControllerFactory] = [
        replicaset_controller,
        replication_controller,
        deployment_controller,
        statefulset_controller,
        garbagecollector_controller,
        namespace_controller,
        serviceaccounts_controller,
        nodelifecycle_controller,
        taint_eviction_controller,
        nodeipam_controller,
        endpoints_controller,
        endpointslice_controller,
    ]
    if ca_pem:
        factories.append(functools.partial(root_ca_publisher, ca_pem=ca_pem))
    return factories


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
