"""capstan-controller: every reconcile loop (workloads, endpoints, nodes, garbage collection, ...)."""
