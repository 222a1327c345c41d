"""The client's command line: its flags, its subcommands, and the argparse types that turn a
bad value into an error naming the flag rather than a protobuf or gRPC failure at the call."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

# A day: longer deadlines overflow gRPC's clock into one that has already passed.
_MAX_TIMEOUT_S = 86_400.0


def parser(description: str | None) -> argparse.ArgumentParser:
    """The client's command line: the global flags, then one subcommand per RPC."""
    parser = argparse.ArgumentParser(prog="python -m services.client", description=description)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--target",
        type=_target,
        default=os.environ.get("GATEWAY_TARGET", "localhost:50051"),
        help="gateway address (default: $GATEWAY_TARGET or localhost:50051)",
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=30.0, help="deadline in seconds (default: 30)"
    )
    parser.add_argument("--tls", action="store_true", help="TLS, trusting the system's CAs")
    parser.add_argument("--tls-ca", type=Path, help="TLS, trusting this PEM CA bundle")
    parser.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS (PEM)")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert (PEM)")
    parser.add_argument(
        "--token",
        type=_token,
        default=os.environ.get("GATEWAY_TOKEN"),
        help="bearer token (default: $GATEWAY_TOKEN); needs TLS unless the gateway is local",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each response as one line of protobuf JSON, for scripts and jq",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    classify = _command(commands, "classify", "classify wine samples")
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

    recognize = _command(commands, "recognize", "read handwritten digits from image files")
    recognize.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files")

    forecast = _command(commands, "forecast", "continue a monthly series")
    history = forecast.add_mutually_exclusive_group(required=True)
    history.add_argument("--history", metavar="V1,V2,...", help="past values, oldest first")
    history.add_argument(
        "--airpassengers", action="store_true", help="the 132 training months of AirPassengers"
    )
    forecast.add_argument("--horizon", type=_INT32, default=12, help="values to generate")
    forecast.add_argument("--method", choices=["stateful", "window"], default="stateful")
    forecast.add_argument("--stream", action="store_true", help="print each value as it comes")

    similar = _command(commands, "similar", "nearest words to a word or an analogy")
    query = similar.add_mutually_exclusive_group(required=True)
    query.add_argument("--word", help="one word")
    query.add_argument("--positive", action="append", help="a word to add (repeatable)")
    similar.add_argument(
        "--negative", action="append", default=[], help="a word to subtract (repeatable)"
    )
    similar.add_argument("--k", type=_INT32, default=10, help="how many neighbours")

    encode = _command(commands, "encode", "latent codes of digit images")
    encode.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files")
    encode.add_argument("--errors", action="store_true", help="also the reconstruction errors")

    list_models = commands.add_parser("list-models", help="list the models behind the gateway")
    list_models.set_defaults(command_parser=list_models)
    get_model = commands.add_parser("get-model", help="one model with its signatures")
    get_model.set_defaults(command_parser=get_model)
    get_model.add_argument("name", help="model name, for example forecaster")
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=help_text)
    command.add_argument(
        "--model-version", type=_integer(0, 2**63 - 1), default=0, help="pin a model version"
    )
    # Errors in a command's arguments are reported with that command's usage.
    command.set_defaults(command_parser=command)
    return command


def _integer(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer the request's field can hold, so an out-of-range value is
    an error naming the flag, not protobuf's "Value out of range"."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}; got {text[:40]}")
        return value

    return parse


_INT32 = _integer(-(2**31), 2**31 - 1)


def _target(text: str) -> str:
    """A gateway address; an empty one gRPC refuses only at the call, after logging."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the gateway's address, for example localhost:50051")
    return text


def _token(text: str) -> str:
    """A bearer token is visible ASCII; anything else gRPC refuses only at the call, as
    "UNAVAILABLE: Illegal metadata". The token is secret, so the error does not show it."""
    if not all("!" <= char <= "~" for char in text):  # "" is no token, as when unset
        raise argparse.ArgumentTypeError(
            "a bearer token is visible ASCII characters, without spaces; this one is not"
        )
    return text


def _seconds(text: str) -> float:
    """A positive, finite number of seconds: gRPC turns nan or inf into an instant timeout."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number of seconds") from None
    if not (math.isfinite(seconds) and 0 < seconds <= _MAX_TIMEOUT_S):
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {_MAX_TIMEOUT_S:g} seconds; got {text[:40]!r}"
        )
    return seconds
