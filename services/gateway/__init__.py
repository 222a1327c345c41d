"""The asyncio gRPC gateway: the only service clients talk to.

`transport/` adapts gRPC to the domain core (`classifier`, `catalog`, `backend`); the core knows
nothing of status codes or protobuf messages of the public API.
"""
