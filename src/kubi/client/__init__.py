"""kubi.client: the asyncio Kubernetes client and informers every component uses."""

from kubi.client.client import Client, KubeConfig, Resource, error_from_response
from kubi.client.informer import Informer, object_key

__all__ = ["Client", "Informer", "KubeConfig", "Resource", "error_from_response", "object_key"]
