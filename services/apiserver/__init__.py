"""capstan-apiserver: the only component that touches storage; serves every kind over gRPC."""
