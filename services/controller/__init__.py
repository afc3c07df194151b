"""capstan-controller: every reconcile loop (workloads, endpoints, nodes, GC, namespaces, ...)."""
