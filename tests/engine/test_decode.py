"""Decoding limits and typed errors, on images the tests make themselves."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.errors import (
    EmptyImage,
    ImageTooLarge,
    ImageTooManyPixels,
    ImageTruncated,
    UnsupportedImageFormat,
)
from models.faces._fr import face_recognition
from models.faces.decode import decode_image
from models.settings import EngineSettings


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image: a decompression bomb's first bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def settings() -> EngineSettings:
    return EngineSettings(max_image_bytes=2 * 1024 * 1024, max_image_pixels=25_000_000)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_supported_formats_decode_to_contiguous_rgb(fmt: str, settings: EngineSettings) -> None:
    data = _encode(Image.new("RGBA" if fmt == "PNG" else "RGB", (40, 30), (200, 100, 50)), fmt)
    array = decode_image(data, settings)
    assert array.shape == (30, 40, 3) and array.dtype == np.uint8 and array.flags["C_CONTIGUOUS"]


def test_exif_orientation_is_applied(settings: EngineSettings) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees on display
    data = _encode(Image.new("RGB", (40, 30)), "JPEG", exif=exif.tobytes())
    assert decode_image(data, settings).shape[:2] == (40, 30)


def test_empty_bytes_are_rejected(settings: EngineSettings) -> None:
    with pytest.raises(EmptyImage):
        decode_image(b"", settings)


def test_text_is_not_an_image(settings: EngineSettings) -> None:
    with pytest.raises(UnsupportedImageFormat):
        decode_image(b"this is a plain text file, not a photo\n" * 10, settings)


def test_gif_is_an_unsupported_format(settings: EngineSettings) -> None:
    with pytest.raises(UnsupportedImageFormat):
        decode_image(_encode(Image.new("RGB", (20, 20)), "GIF"), settings)


def test_oversized_file_is_rejected_before_decoding(settings: EngineSettings) -> None:
    with pytest.raises(ImageTooLarge) as caught:
        decode_image(b"\xff\xd8" + b"\0" * (3 * 1024 * 1024), settings)
    assert caught.value.http_status == 413


def test_decompression_bomb_header_is_rejected(settings: EngineSettings) -> None:
    with pytest.raises(ImageTooManyPixels):
        decode_image(_png_header_claiming(30000, 30000), settings)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_rejected_even_after_face_recognition_import(fmt: str, settings: EngineSettings) -> None:
    face_recognition()  # sets PIL's LOAD_TRUNCATED_IMAGES process-wide: decode must not rely on it
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), fmt)
    with pytest.raises(ImageTruncated):
        decode_image(data[: len(data) // 2], settings)
