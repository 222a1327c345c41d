"""Requests as bytes on the wire: the RPCs of a service, requests whose proto3 strings hold
invalid UTF-8, and mutations of serialized requests, all sent raw over a real channel."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

# Written into every string field, then swapped for bytes of the same length that are not
# UTF-8, so that every length prefix around it stays right and only the text is wrong.
MARKER = "~utf8~"
INVALID_UTF8 = (
    b"\xff\xfe\xfd\xfc\xfb\xfa",  # bytes that never occur in UTF-8
    b"\xc3\x28abcd",  # a lead byte without its continuation
    b"\xed\xa0\x80\xed\xbf\xbf",  # UTF-16 surrogates, encoded
    b"\xc0\xafabcd",  # an overlong encoding of "/"
    b"abcd\xe2\x82",  # cut in the middle of a character
)


@dataclass(frozen=True)
class Rpc:
    path: str  # /package.Service/Method
    request_type: str  # the request message's full name
    streaming: bool  # server streaming


def rpcs(service: ServiceDescriptor) -> dict[str, Rpc]:
    return {
        method.name: Rpc(
            f"/{service.full_name}/{method.name}",
            method.input_type.full_name,
            method.server_streaming,
        )
        for method in service.methods
    }


def undecodable_details(request_type: str) -> str:
    """What both servers answer, with INVALID_ARGUMENT, for bytes that don't parse."""
    return f"request: the bytes are not a valid {request_type} message"


def marked(message: Message) -> Message:
    """A copy of ``message`` with MARKER in every string field that can hold one: singular
    strings (in a oneof, only in its chosen member), repeated ones, string map keys, in the
    sub-messages that are set."""
    copy = type(message)()
    copy.CopyFrom(message)
    _mark_strings(copy, depth=3)
    return copy


def _mark_strings(message: Message, depth: int) -> None:
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        chosen = oneof is None or message.WhichOneof(oneof.name) in (None, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_name
            if entry["key"].type == FieldDescriptor.TYPE_STRING:
                values = getattr(message, field.name)
                if entry["value"].message_type is None:
                    values[MARKER] = entry["value"].default_value
                else:
                    values[MARKER].SetInParent()  # a message value: reading the key adds it
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                getattr(message, field.name).append(MARKER)
            elif chosen:
                setattr(message, field.name, MARKER)
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth > 0:
            if field.is_repeated:
                for item in getattr(message, field.name):
                    _mark_strings(item, depth - 1)
            elif message.HasField(field.name):
                _mark_strings(getattr(message, field.name), depth - 1)


def with_invalid_utf8(serialized: bytes, bad: bytes = INVALID_UTF8[0]) -> bytes:
    """Serialized bytes of a marked message, every marker swapped for bytes that aren't UTF-8."""
    assert MARKER.encode() in serialized, "no string field was marked"
    return serialized.replace(MARKER.encode(), bad)


def serialized(messages: st.SearchStrategy[Message]) -> st.SearchStrategy[bytes]:
    """Messages serialized as they are, or with MARKER in every string field."""

    def encode(message: Message, mark: bool) -> bytes:
        return (marked(message) if mark else message).SerializeToString()

    return st.builds(encode, messages, st.booleans())


@dataclass(frozen=True)
class Mutated:
    kind: str  # "bits", "cut", "inserted" or "utf8"
    data: bytes


def mutations(serialized: bytes) -> st.SearchStrategy[Mutated]:
    """Bit flips, truncations, inserted bytes and, where strings were marked, invalid UTF-8
    (which never parses, so a test can expect INVALID_ARGUMENT for it)."""
    size = len(serialized)
    inserted = st.tuples(st.integers(0, size), st.binary(min_size=1, max_size=16)).map(
        lambda at: serialized[: at[0]] + at[1] + serialized[at[0] :]
    )
    kinds = [inserted.map(lambda data: Mutated("inserted", data))]
    if size:
        bits = st.lists(
            st.tuples(st.integers(0, size - 1), st.integers(0, 7)), min_size=1, max_size=8
        )
        kinds.append(bits.map(lambda flips: Mutated("bits", _flip(serialized, flips))))
        cuts = st.integers(0, size - 1)
        kinds.append(cuts.map(lambda cut: Mutated("cut", serialized[:cut])))
    if MARKER.encode() in serialized:
        bad = st.sampled_from(INVALID_UTF8)
        kinds.append(bad.map(lambda bad: Mutated("utf8", with_invalid_utf8(serialized, bad))))
    return st.one_of(kinds)


def _flip(data: bytes, bits: list[tuple[int, int]]) -> bytes:
    flipped = bytearray(data)
    for position, bit in bits:
        flipped[position] ^= 1 << bit
    return bytes(flipped)


def send_mutated(
    channel: grpc.Channel, rpc: Rpc, mutated: Mutated, allowed: Collection[grpc.StatusCode]
) -> None:
    """Sends the bytes as they are (no serializer); fails on an answer other than OK or an
    allowed code with details, and on anything but the undecodable answer to invalid UTF-8."""
    try:
        if rpc.streaming:
            list(channel.unary_stream(rpc.path)(mutated.data, timeout=30))
        else:
            channel.unary_unary(rpc.path)(mutated.data, timeout=30)
    except grpc.RpcError as error:
        code, details = error.code(), error.details()  # type: ignore[attr-defined]
        answer = f"{rpc.path} answered {mutated.kind} bytes with {code}: {details}"
        if mutated.kind == "utf8":
            undecodable = (grpc.StatusCode.INVALID_ARGUMENT, undecodable_details(rpc.request_type))
            assert (code, details) == undecodable, answer
        assert code in allowed, answer
        assert details, answer
    else:
        assert mutated.kind != "utf8", f"{rpc.path} answered OK to a string that is not UTF-8"
