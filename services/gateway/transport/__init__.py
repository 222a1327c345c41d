"""gRPC adapters over the domain core: servicer, protobuf converters, status mapping."""
