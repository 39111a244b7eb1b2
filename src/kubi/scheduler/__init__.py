"""kubi.scheduler: places pending pods on nodes, with upstream's rules.

The decisions are pure functions on plain data: `filters` (may the pod run
there?), `scores` (how well?), and `algorithm.schedule_pod`/`schedule` (the
whole choice, or upstream's `0/N nodes are available: ...` explanation).
Around them, `cache` (nodes and the pods on them, assumed ones included),
`queue` (active, backoff, unschedulable) and `scheduler.Scheduler`, which
watches the API, binds through `pods/binding` and reports back.
"""

from kubi.scheduler.algorithm import Diagnosis, ScheduleResult, schedule, schedule_pod
from kubi.scheduler.cache import SchedulerCache
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from kubi.scheduler.queue import SchedulingQueue
from kubi.scheduler.scheduler import DEFAULT_SCHEDULER_NAME, Scheduler, main

__all__ = [
    "DEFAULT_SCHEDULER_NAME",
    "Diagnosis",
    "NodeInfo",
    "PodInfo",
    "ScheduleResult",
    "Scheduler",
    "SchedulerCache",
    "SchedulingQueue",
    "main",
    "schedule",
    "schedule_pod",
]
