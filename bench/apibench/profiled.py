"""`kubi` with a cProfile switch, for `bench/api.py --profile` without py-spy.

Run as `python profiled.py up ...` with KUBI_BENCH_PROFILE_DIR set: SIGUSR1
starts a fresh profiler on the main thread (where the event loop and every
request handler run) and SIGUSR2 stops it and writes `profile-<n>.prof` into
that directory, so only the phases the benchmark chooses are profiled.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from kubi.cli.main import main

_state: dict[str, object] = {"profile": None, "dumps": 0}


def _begin(signum: int, frame: FrameType | None) -> None:
    profile = cProfile.Profile()
    _state["profile"] = profile
    profile.enable()


def _dump(signum: int, frame: FrameType | None) -> None:
    profile = _state["profile"]
    if not isinstance(profile, cProfile.Profile):
        return
    profile.disable()
    dumps = int(_state["dumps"]) + 1  # type: ignore[call-overload]
    _state["dumps"] = dumps
    target = Path(os.environ["KUBI_BENCH_PROFILE_DIR"]) / f"profile-{dumps}.prof"
    partial = target.with_suffix(".tmp")
    profile.dump_stats(str(partial))
    # Renamed into place so the benchmark never reads a half-written file.
    partial.replace(target)
    _state["profile"] = None


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _begin)
    signal.signal(signal.SIGUSR2, _dump)
    sys.argv[0] = "kubi"
    main()
