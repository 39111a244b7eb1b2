"""The parts of the API benchmark (`bench/api.py`).

`servers` starts and watches the processes under test (kubi and the bare
aiohttp floor server), `load` is the client that drives them from separate
worker processes, `profiling` samples the server while it is under load, and
`report` turns raw latencies and CPU times into the printed table, ratios and
target verdicts. Only `bench/api.py` composes them; each part is usable alone.
"""
