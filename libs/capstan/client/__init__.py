"""The capstan API client library: typed client, informers, work queue, reconcile-loop
skeleton, leader election and event recording - what every component after the
apiserver (and the CLI) is built on."""

from capstan.client.client import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    Client,
    ResourceClient,
    WatchEvent,
)
from capstan.client.events import NORMAL, WARNING, EventRecorder, reference
from capstan.client.indexer import (
    NAMESPACE_INDEX,
    NODE_NAME_INDEX,
    OWNER_UID_INDEX,
    Indexer,
    IndexFunc,
    index_by_label,
    index_by_namespace,
    index_by_node_name,
    index_by_owner_uid,
    object_key,
    split_key,
)
from capstan.client.informer import EventHandler, Informer, SharedInformerFactory
from capstan.client.leaderelection import LeaderContext, LeaderElectionConfig, LeaderElector
from capstan.client.reconcile import Controller, controller_owner_key, own_key
from capstan.client.transport import Backoff, ClientTLS
from capstan.client.workqueue import WorkQueue

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "MODIFIED",
    "NAMESPACE_INDEX",
    "NODE_NAME_INDEX",
    "NORMAL",
    "OWNER_UID_INDEX",
    "WARNING",
    "Backoff",
    "Client",
    "ClientTLS",
    "Controller",
    "EventHandler",
    "EventRecorder",
    "IndexFunc",
    "Indexer",
    "Informer",
    "LeaderContext",
    "LeaderElectionConfig",
    "LeaderElector",
    "ResourceClient",
    "SharedInformerFactory",
    "WatchEvent",
    "WorkQueue",
    "controller_owner_key",
    "index_by_label",
    "index_by_namespace",
    "index_by_node_name",
    "index_by_owner_uid",
    "object_key",
    "own_key",
    "reference",
    "split_key",
]
