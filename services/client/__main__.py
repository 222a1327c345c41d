"""Call the gateway from the command line.

    python -m services.client classify --wine-row 0
    python -m services.client classify \
        --values 13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050
    python -m services.client classify --feature alcohol=13.2 --feature malic_acid=1.78 ...
    python -m services.client list-models
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.command == "classify":
        try:
            request = _classify_request(options)
        except ValueError as exc:
            parser.error(f"classify: {exc}")
    with grpc.insecure_channel(options.target) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        response: Message
        try:
            if options.command == "classify":
                response = stub.Classify(request, timeout=options.timeout)
            else:
                response = stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=options.timeout)
        except grpc.RpcError as exc:
            print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    # Zero values too: class_id 0 is an answer, not an absent field.
    print(
        json_format.MessageToJson(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.client", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--target",
        default=os.environ.get("GATEWAY_TARGET", "localhost:50051"),
        help="gateway address (default: $GATEWAY_TARGET or localhost:50051)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline in seconds")
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="classify wine samples")
    classify.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="V1,...,V13",
        help="one sample as 13 comma-separated values in the documented order (repeatable)",
    )
    classify.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one named measurement; all --feature flags form one sample",
    )
    classify.add_argument(
        "--wine-row",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="a row of scikit-learn's wine data set (repeatable)",
    )
    classify.add_argument("--model-version", type=int, default=0, help="pin a model version")
    commands.add_parser("list-models", help="list the models behind the gateway")
    return parser


def _classify_request(options: argparse.Namespace) -> gateway_pb2.ClassifyRequest:
    request = gateway_pb2.ClassifyRequest(model_version=options.model_version)
    for values in options.values:
        request.samples.add().ordered.values.extend(float(v) for v in values.split(","))
    if options.feature:
        named = request.samples.add().named
        for pair in options.feature:
            name, _, value = pair.partition("=")
            named.values[name] = float(value)
    if options.wine_row:
        from sklearn.datasets import load_wine

        wine = load_wine()
        for row in options.wine_row:
            request.samples.add().ordered.values.extend(wine.data[row].tolist())
            print(f"wine row {row}: true class {wine.target_names[wine.target[row]]}")
    return request


if __name__ == "__main__":
    sys.exit(main())
