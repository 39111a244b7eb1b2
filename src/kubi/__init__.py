"""kubi: a Kubernetes-compatible cluster written in Python.

The package is split the way Kubernetes is: `kubi.api` knows the resources
(catalog, schema, defaults, validation, patches, printers), `kubi.store` keeps
them durably, `kubi.apiserver` serves the REST API, `kubi.client` is the shared
client every other component uses, and `kubi.cli` is the `kubi` command.
"""

__version__ = "0.1.0"

# The Kubernetes release whose behaviour kubi reproduces.
KUBERNETES_VERSION = "v1.33.0"
