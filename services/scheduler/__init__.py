"""capstan-scheduler: binds every pending pod to a node, as kube-scheduler does."""
