"""Kind-specific behaviour (defaults, preparation, validation), one module per
family of kinds; importing this package registers all of it with
`kubi.api.hooks`."""

from kubi.api.kinds import core, misc, pod, storage, workloads  # noqa: F401
