"""Call the gateway from the command line; every RPC has a command.

python -m services.client classify --wine-row 0
python -m services.client classify --feature alcohol=13.2 --feature malic_acid=1.78 ...
python -m services.client recognize digit.png [more.jpg ...]
python -m services.client forecast --airpassengers --horizon 12
python -m services.client forecast --history 112,118,132,129,121,135 --horizon 3 --stream
python -m services.client similar --word king --k 5
python -m services.client similar --positive king --positive woman --negative man
python -m services.client encode digit.png --errors
python -m services.client list-models
python -m services.client get-model forecaster
python -m services.client --tls-ca ca.pem --tls-cert me.pem --tls-key me-key.pem list-models
python -m services.client --json forecast --airpassengers --horizon 3 --stream | jq .value

Answers are printed for people; with --json, as the protobuf JSON mapping, one response a line.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import ssl
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from services.client import render
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

Stub = gateway_pb2_grpc.GatewayServiceStub
# A day: longer deadlines overflow gRPC's clock into one that has already passed.
_MAX_TIMEOUT_S = 86_400.0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:
        # Ctrl-C: the user knows why it stopped; 130 is the shell's code for SIGINT.
        return 130
    except BrokenPipeError:
        # The reader (`head`, a closed `jq`) went away: nothing is left to say, nor anyone to
        # say it to. Point stdout at /dev/null so that Python's own flush at exit stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if (options.tls_cert is None) != (options.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    try:
        command = _COMMANDS[options.command](options)
    except OSError as exc:
        options.command_parser.error(_file_error(exc))
    except ValueError as exc:
        options.command_parser.error(str(exc))
    try:
        channel = _channel(options)
    except OSError as exc:
        parser.error(_file_error(exc))
    except ValueError as exc:
        parser.error(str(exc))
    with channel:
        try:
            responses = command.call(Stub(channel), options.timeout)
            lines = (
                map(render.json_line, responses) if options.json else command.readable(responses)
            )
            for line in lines:
                print(line, flush=True)
        except grpc.RpcError as exc:
            print(f"{exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    return 0


Call = Callable[[Stub, float], Iterable[Message]]
# Turns a call's responses into lines for people, knowing what the request held.
Readable = Callable[[Iterable[Any]], Iterable[str]]


@dataclass(frozen=True)
class Command:
    """A command's call to the gateway, and how its answers read."""

    call: Call
    readable: Readable


def _each(render_one: Callable[[Any], list[str]]) -> Readable:
    """A Readable for unary calls: each response is rendered whole."""
    return lambda responses: (line for response in responses for line in render_one(response))


def _channel(options: argparse.Namespace) -> grpc.Channel:
    """Plaintext by default; TLS (mutual with a client certificate) and a bearer token on
    request. A token goes over TLS, or in the clear only to this machine."""
    use_tls = options.tls or options.tls_ca or options.tls_cert
    if not use_tls and not options.token:
        return grpc.insecure_channel(options.target)
    if use_tls:
        _check_tls_files(options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(options.tls_ca),
            private_key=_read(options.tls_key),
            certificate_chain=_read(options.tls_cert),
        )
    else:
        credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    if options.token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(options.token)
        )
    return grpc.secure_channel(options.target, credentials)


def _check_tls_files(options: argparse.Namespace) -> None:
    """ValueError naming the flag of a PEM file that TLS cannot use. gRPC reads them only when it
    connects, and then logs OpenSSL's complaints and fails the call as if the gateway were down;
    Python's ssl module reads them the same way at once."""
    for path in (options.tls_ca, options.tls_cert, options.tls_key):
        _read(path)  # a missing or unreadable file is an OSError naming it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # This context only reads the files, it never connects: no security level of OpenSSL's
    # ("ee key too small"), so that it refuses no key that gRPC itself would use.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if options.tls_ca is not None:
        try:
            context.load_verify_locations(cafile=options.tls_ca)
        except ssl.SSLError:
            raise ValueError(f"--tls-ca: no PEM certificate in {options.tls_ca}") from None
    if options.tls_cert is not None:
        try:
            # An empty password: gRPC cannot use an encrypted key, so it is refused, not
            # prompted for.
            context.load_cert_chain(options.tls_cert, options.tls_key, password=b"")
        except ssl.SSLError:
            raise ValueError(
                f"--tls-cert, --tls-key: {options.tls_cert} and {options.tls_key} are not a PEM "
                "certificate and its unencrypted private key"
            ) from None


def _file_error(exc: OSError) -> str:
    """A file that cannot be read: the reason and its name, never a traceback."""
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def _numbers(flag: str, text: str) -> list[float]:
    """Comma-separated numbers, or ValueError naming the flag and the word that is not one."""
    numbers = []
    for word in text.split(","):
        if not word.strip():
            continue
        try:
            numbers.append(float(word))
        except ValueError:
            raise ValueError(f"{flag}: {word[:40]!r} is not a number") from None
    return numbers


def _classify(options: argparse.Namespace) -> Command:
    request = gateway_pb2.ClassifyRequest(model_version=options.model_version)
    # What each sample is called in the output, in request order: the wine rows say which row
    # and its true class, so that a reader sees at once whether the answer is right.
    sample_names: list[str] = []
    for values in options.values:
        request.samples.add().ordered.values.extend(_numbers("--values", values))
        sample_names.append(f"sample {len(sample_names) + 1}")
    if options.feature:
        named = request.samples.add().named
        for pair in options.feature:
            name, equals, value = pair.partition("=")
            numbers = _numbers("--feature", value)
            if not equals or len(numbers) != 1:
                raise ValueError(f"--feature: expected NAME=VALUE, got {pair[:60]!r}")
            named.values[name] = numbers[0]
        sample_names.append(f"sample {len(sample_names) + 1}")
    if options.wine_row:
        wine = _import("sklearn.datasets", "--wine-row", "scikit-learn").load_wine()
        rows = len(wine.data)
        for row in options.wine_row:
            # Checked here, not by indexing: -1 would silently be the last row.
            if not 0 <= row < rows:
                raise ValueError(
                    f"--wine-row: {row} is not a row of the wine data; use 0 to {rows - 1}"
                )
            request.samples.add().ordered.values.extend(wine.data[row].tolist())
            true_class = wine.target_names[wine.target[row]]
            sample_names.append(f"wine row {row} (true class {true_class})")
    return Command(
        lambda stub, timeout: [stub.Classify(request, timeout=timeout)],
        _each(lambda response: render.classify(response, sample_names)),
    )


def _import(module: str, flag: str, package: str) -> Any:
    """A module only some flags need, from the client's optional extra; its absence is the
    flag's error, not a traceback."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(
            f"{flag} needs {package}, of the client extra: pip install '.[client]'"
        ) from None


def _images(paths: Sequence[Path]) -> list[gateway_pb2.Image]:
    return [gateway_pb2.Image(encoded=path.read_bytes()) for path in paths]


def _recognize(options: argparse.Namespace) -> Command:
    request = gateway_pb2.RecognizeDigitsRequest(
        images=_images(options.images), model_version=options.model_version
    )
    names = [str(path) for path in options.images]
    return Command(
        lambda stub, timeout: [stub.RecognizeDigits(request, timeout=timeout)],
        _each(lambda response: render.digits(response, names)),
    )


# AirPassengers begins in January 1949 (Box & Jenkins series G; pmdarima's array has no dates).
_AIRPASSENGERS_FIRST_MONTH = (1949, 1)


def _forecast(options: argparse.Namespace) -> Command:
    if options.airpassengers:
        series = _import("training.series", "--airpassengers", "pmdarima")
        history = series.load_airpassengers_split().train.tolist()
        # The training months end in 1959-12, so the forecast's first month is 1960-01.
        step_label: render.StepLabel = render.months_after(
            *_AIRPASSENGERS_FIRST_MONTH, known=len(history)
        )
    else:
        history = _numbers("--history", options.history)
        step_label = render.steps_ahead
    decimals = render.forecast_decimals(history)
    method = (
        gateway_pb2.GENERATION_METHOD_WINDOW
        if options.method == "window"
        else gateway_pb2.GENERATION_METHOD_STATEFUL
    )
    fields = {
        "history": history,
        "horizon": options.horizon,
        "method": method,
        "model_version": options.model_version,
    }
    if options.stream:
        stream_request = gateway_pb2.StreamForecastRequest(**fields)
        return Command(
            lambda stub, timeout: stub.StreamForecast(stream_request, timeout=timeout),
            lambda points: render.forecast_stream(points, step_label, decimals),
        )
    request = gateway_pb2.ForecastRequest(**fields)
    return Command(
        lambda stub, timeout: [stub.Forecast(request, timeout=timeout)],
        _each(lambda response: render.forecast(response, step_label, decimals)),
    )


def _similar(options: argparse.Namespace) -> Command:
    request = gateway_pb2.SimilarWordsRequest(k=options.k, model_version=options.model_version)
    if options.word is not None:
        request.word = options.word
    else:
        request.analogy.positive.extend(options.positive)
        request.analogy.negative.extend(options.negative)
    return Command(
        lambda stub, timeout: [stub.SimilarWords(request, timeout=timeout)],
        _each(render.similar_words),
    )


def _encode(options: argparse.Namespace) -> Command:
    request = gateway_pb2.EncodeRequest(
        images=_images(options.images),
        include_reconstruction_error=options.errors,
        model_version=options.model_version,
    )
    names = [str(path) for path in options.images]
    return Command(
        lambda stub, timeout: [stub.Encode(request, timeout=timeout)],
        _each(lambda response: render.codes(response, names)),
    )


def _list_models(options: argparse.Namespace) -> Command:
    return Command(
        lambda stub, timeout: [stub.ListModels(gateway_pb2.ListModelsRequest(), timeout=timeout)],
        _each(render.models),
    )


def _get_model(options: argparse.Namespace) -> Command:
    request = gateway_pb2.GetModelRequest(name=options.name)
    return Command(
        lambda stub, timeout: [stub.GetModel(request, timeout=timeout)],
        _each(render.model),
    )


_COMMANDS: dict[str, Callable[[argparse.Namespace], Command]] = {
    "classify": _classify,
    "recognize": _recognize,
    "forecast": _forecast,
    "similar": _similar,
    "encode": _encode,
    "list-models": _list_models,
    "get-model": _get_model,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.client", description=__doc__)
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


if __name__ == "__main__":
    sys.exit(main())
