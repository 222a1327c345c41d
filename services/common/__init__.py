"""gRPC server pieces that the gateway and the model server both use."""
