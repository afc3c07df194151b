"""capstan: a Kubernetes-style control plane over gRPC. The shared library of every daemon."""

__version__ = "0.1.0"
