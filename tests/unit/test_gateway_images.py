"""The pictures of one request: every header checked against the limits before any is decoded,
the pixels of all of them bounded together, and decoding stopped by the request's deadline."""

from __future__ import annotations

import asyncio
import io
import threading
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from png_bytes import chunk, header_only_png

from services.gateway import errors
from services.gateway import images as image_inputs
from services.gateway.digits import ImageLimits
from services.gateway.domain import Deadline
from services.gateway.images import ImageInput, prepare_images

FIELD = "images"


def drawn_digit(side: int) -> bytes:
    """A 7 drawn on noisy paper: a picture that costs real work to decode and prepare."""
    noise = np.random.default_rng(side).integers(200, 256, (side, side), dtype=np.uint8)
    image = Image.fromarray(noise)
    ImageDraw.Draw(image).line([(side // 8, side // 6), (side // 2, side // 6)], 0, side // 20)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def prepare(images: list[ImageInput], limits: ImageLimits, seconds: float = 60.0) -> np.ndarray:
    return asyncio.run(prepare_images(images, FIELD, 1024, limits, Deadline.after(seconds)))


def test_all_pictures_of_a_request_share_one_pixel_limit_checked_before_decoding() -> None:
    # Each picture is within the per-image limit; five together are not.
    images = [ImageInput(encoded=header_only_png(4096, 4096)) for _ in range(5)]

    with pytest.raises(errors.InvalidInput) as raised:
        prepare(images, ImageLimits())

    assert raised.value.field == FIELD
    assert raised.value.reason.startswith(
        "83886080 pixels in all is over the limit of 67108864 pixels per request"
    )


def test_a_bad_header_anywhere_is_found_before_the_first_picture_is_decoded() -> None:
    images = [
        ImageInput(encoded=header_only_png(64, 64)),  # truncated: decoding it would fail
        ImageInput(encoded=b"not a picture"),
    ]
    with pytest.raises(errors.InvalidInput) as raised:
        prepare(images, ImageLimits())
    assert raised.value.field == "images[1].encoded"
    assert raised.value.reason == "not a PNG or JPEG image"


def test_pictures_within_the_request_limit_are_prepared() -> None:
    limits = ImageLimits(max_request_pixels=3 * 200 * 200)
    images = [ImageInput(encoded=drawn_digit(200)) for _ in range(3)]
    images.append(ImageInput(raw=[0.0] * 784))  # raw pixels decode nothing and do not count

    batch = prepare(images, limits)

    assert batch.shape == (4, 28, 28)
    with pytest.raises(errors.InvalidInput, match="over the limit of 119999 pixels per request"):
        prepare(images, ImageLimits(max_request_pixels=3 * 200 * 200 - 1))


def test_a_request_whose_deadline_has_passed_decodes_nothing() -> None:
    images = [ImageInput(encoded=header_only_png(64, 64))]  # would be "truncated" if decoded
    with pytest.raises(errors.DeadlineExceeded) as raised:
        prepare(images, ImageLimits(), seconds=-1.0)
    assert "stopped before images[0], 1 pictures in all" in raised.value.message


def test_decoding_stops_between_pictures_once_the_deadline_passes() -> None:
    picture = drawn_digit(2048)
    count = 12
    images = [ImageInput(encoded=picture) for _ in range(count)]
    limits = ImageLimits(max_request_pixels=count * 2048 * 2048)

    with pytest.raises(errors.DeadlineExceeded) as raised:
        prepare(images, limits, seconds=0.2)

    # Each of these pictures takes a tenth of a second or more to prepare, all of them over a
    # second: the deadline passed during the first few, and the rest were never decoded.
    stopped = int(raised.value.message.split("stopped before images[")[1].split("]")[0])
    assert 0 <= stopped < count - 1


def _threads_preparing(images: list[ImageInput], monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The threads the pictures of one request were decoded in: from their bytes, or from the
    header read while checking them."""
    threads: set[int] = set()

    def recorded(name: str) -> None:
        original = getattr(image_inputs, name)

        def recording(*args: object, **kwargs: object) -> np.ndarray:
            threads.add(threading.get_ident())
            return original(*args, **kwargs)  # type: ignore[no-any-return]

        monkeypatch.setattr(image_inputs, name, recording)

    recorded("prepare_encoded")
    recorded("decode_opened")
    prepare(images, ImageLimits())
    return threads


def test_a_few_small_pictures_are_prepared_on_the_event_loop_and_larger_ones_off_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = [ImageInput(encoded=drawn_digit(56))]
    assert _threads_preparing(small, monkeypatch) == {threading.get_ident()}
    for larger in ([ImageInput(encoded=drawn_digit(512))], small * 5, [_with_text(small[0])]):
        assert threading.get_ident() not in _threads_preparing(larger, monkeypatch)


def _with_text(image: ImageInput) -> ImageInput:
    """The picture with compressed text after its header, which Pillow inflates as it opens
    it: a kilobyte of it here becomes a megabyte."""
    assert image.encoded is not None
    end_of_header = 8 + 25  # the signature, then IHDR's length, type, 13 bytes and CRC
    text = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"x" * (1 << 20), 9))
    encoded = image.encoded[:end_of_header] + text + image.encoded[end_of_header:]
    assert len(encoded) < 8 << 10
    return ImageInput(encoded=encoded)


def test_a_picture_is_prepared_alike_on_the_event_loop_and_off_it() -> None:
    digit = ImageInput(encoded=drawn_digit(56))
    alone = prepare([digit], ImageLimits())  # on the loop
    in_a_crowd = prepare([digit] * 5, ImageLimits())  # too many pictures: in a thread
    for prepared in in_a_crowd:
        np.testing.assert_array_equal(prepared, alone[0])
