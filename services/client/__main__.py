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
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from services.client import arguments, render
from services.client.channel import connect
from services.generated.gateway.v1 import gateway_pb2, gateway_pb2_grpc

Stub = gateway_pb2_grpc.GatewayServiceStub


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
    parser = arguments.parser(__doc__)
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
        channel = connect(options)
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


def _file_error(exc: OSError) -> str:
    """A file that cannot be read: the reason and its name, never a traceback."""
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)


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


if __name__ == "__main__":
    sys.exit(main())
