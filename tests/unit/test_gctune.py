"""The kubi command's garbage collection settings: young collections only, and
a periodic full collection that still finds cycles among older objects."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
import weakref

from kubi import gctune


def test_the_kubi_command_collects_young_cycles_only() -> None:
    script = ("import gc, sys\n"
              "from kubi.cli.main import main\n"
              "sys.argv = ['kubi', 'up', '--help']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(gc.get_threshold())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == \
        str((gctune.YOUNG_THRESHOLD, gctune.NEVER, gctune.NEVER))


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_the_periodic_full_collection_frees_old_cycles() -> None:
    saved = gc.get_threshold()
    stop = threading.Event()
    try:
        gc.set_threshold(gctune.YOUNG_THRESHOLD, gctune.NEVER, gctune.NEVER)
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        gc.collect(0)  # survives into an older generation while still referenced
        del a, b
        gc.collect(0)  # a young collection does not look there
        assert gone() is not None
        collector = threading.Thread(target=gctune.collect_every, args=(0.05, stop))
        collector.start()
        deadline = time.monotonic() + 10
        while gone() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone() is None
    finally:
        stop.set()
        gc.set_threshold(*saved)
