"""Decode any supported image file into the canonical form: one channel, float32 in [0, 1].

Everything downstream (resize, augmentation, the model's mean/std) assumes this form, so the bit
depth and layout of a file on disk must never leak past this module.

Formats, recognised by their leading bytes rather than by file name:

- PNG (1-16 bit): decoded with ``tf.io.decode_png(dtype=uint16)``, which widens lower bit depths
  by bit replication (8-bit ``v`` becomes ``257 * v``), so scaling by 1/65535 gives ``v / 255`` for
  8-bit files and ``v / 65535`` for 16-bit files (to float32 rounding): no bit-depth bookkeeping,
  no clipping at 255.
- JPEG: ``tf.io.decode_jpeg``, scaled by 1/255.
- DICOM (``DICM`` at byte 128): pydicom, MONOCHROME1/2 only, scaled by the stored bit range
  (``2**BitsStored - 1``) rather than by the container dtype, MONOCHROME1 inverted. The modality
  LUT (RescaleSlope/Intercept) is linear and the canonical form spans the full range the stored
  bits can hold, so a positive slope and any intercept cancel out exactly; only a negative slope,
  which flips the grey scale, changes the result.

  The file's VOI transform (``dicom_window``) is applied by default when it has one: a VOI LUT
  Sequence (preferred, as DICOM PS3.3 C.11.2 prescribes), else the first WindowCenter /
  WindowWidth pair with its VOILUTFunction (LINEAR, LINEAR_EXACT or SIGMOID), both through
  pydicom's ``apply_voi_lut`` on the modality values (``apply_modality_lut``); the result is scaled
  from the transform's output range to [0, 1] (window: below the window 0, above it 1; LUT: its
  entries over ``2**bits - 1`` of its descriptor) and MONOCHROME1 is inverted after it. Why on by
  default: the window is the acquiring system's statement of how the film is meant to be seen,
  and the films the models here learn from (NIH PNGs, CheXpert JPEGs) are such display-ready
  renderings, while a raw 12-16-bit detector image spans a much wider, flatter grey range. No
  dataset tfcxr reads for training is DICOM (PadChest is 16-bit PNG), so the default changes no
  training or evaluation number of existing data; a DICOM without VOI attributes decodes as
  before. ``dicom_window="off"`` keeps the stored-bit scaling for files that have a window too.

Channels are collapsed by one rule: alpha is dropped; grey stays as it is; RGB becomes ITU-R BT.601
luma ``0.299 R + 0.587 G + 0.114 B`` (the weights of PIL's ``convert("L")``). An RGB(A) file whose
channels are equal, like the six RGBA images in the NIH sample, therefore decodes to its grey
value within float32 rounding (at most a few 1e-8).

There are two entry points over the same decoders. ``load_image(path)`` returns a numpy array for
checks, explanation and the CLI. ``decode_image(path)`` is the in-graph version for ``tf.data``:
well-formed PNG/JPEG files (signature at the start, end marker at the end) are decoded by the
TensorFlow ops directly; every other file (DICOM, truncated, unrecognised, JPEG with trailing
bytes) is handed to ``load_image``'s code through ``tf.py_function``, so it is either decoded to the
same numbers or fails with an ``ImageDecodeError`` message that names the file. The one failure
that cannot name its file is a PNG/JPEG that is structurally complete but whose compressed data is
corrupt: TensorFlow's decoder raises its own error inside the graph. ``find_bad_images`` (or
``load_image`` over the files) finds it.

PIL is deliberately not the PNG decoder here: it reads 16-bit RGB PNGs as 8-bit and turns 16-bit
grey+alpha into an RGBA image with alpha 0, and its JPEG decoder need not match TensorFlow's to
the last bit. One decoder per format is what makes both entry points agree exactly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tfcxr.backend import tf
from tfcxr.errors import ImageDecodeError
from tfcxr.preprocessing import DICOM_WINDOW_MODES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the fixed 12-byte chunk that ends every PNG
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
DICOM_MAGIC_OFFSET = 128
DICOM_MAGIC = b"DICM"
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601

_HEAD_BYTES = DICOM_MAGIC_OFFSET + len(DICOM_MAGIC)
_TAIL_BYTES = len(PNG_IEND_CHUNK)


def load_image(path: str | Path, dicom_window: str = "auto") -> np.ndarray:
    """Decode one file into a float32 array of shape [H, W] with values in [0, 1].

    dicom_window: "auto" applies a DICOM file's VOI LUT or window when it has one, "off" never
    does (see the module docstring); PNG and JPEG files ignore it.
    Raises ImageDecodeError naming the file for a missing, empty, truncated, corrupt or
    unsupported file.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    except OSError as e:
        raise ImageDecodeError(path, f"cannot read the file ({e.strerror or e})") from None
    return decode_bytes(data, path, dicom_window)


def decode_bytes(data: bytes, path: str | Path, dicom_window: str = "auto") -> np.ndarray:
    """``load_image`` on bytes already read; ``path`` is only used to name the file in errors."""
    _check_window_mode(dicom_window)
    if not data:
        raise ImageDecodeError(path, "empty file")
    kind = _sniff_format(data[:_HEAD_BYTES])
    if kind == "dicom":
        return _decode_dicom(data, path, dicom_window)
    if kind is None:
        raise ImageDecodeError(
            path, f"not a PNG, JPEG or DICOM file (starts with {data[:8]!r}); DICOM files need "
                  "the 'DICM' marker at byte 128")
    try:
        return _decode_raster(tf.constant(data)).numpy()[..., 0]
    except tf.errors.InvalidArgumentError as e:
        raise ImageDecodeError(path, _raster_problem(kind, data, e.message)) from None


def decode_image(path: tf.Tensor, dicom_window: str = "auto") -> tf.Tensor:
    """In-graph decoder for ``tf.data``: a scalar string path to float32 [H, W, 1] in [0, 1]."""
    _check_window_mode(dicom_window)
    data = tf.io.read_file(path)
    fast = (_starts_with(data, PNG_SIGNATURE) & _ends_with(data, PNG_IEND_CHUNK)) | (
        _starts_with(data, JPEG_SOI) & _ends_with(data, JPEG_EOI))  # _is_complete_raster in-graph
    image = tf.cond(fast, lambda: _decode_raster(data), lambda: _decode_in_python(data, path, dicom_window))
    image.set_shape([None, None, 1])
    return image


def find_bad_images(paths: Iterable[str | Path], dicom_window: str = "auto") -> dict[str, str]:
    """Map each file that cannot be decoded to the problem, reading as little as possible.

    A PNG/JPEG with its signature and end marker in place is accepted from its first and last
    bytes alone; any other file (DICOM included) is decoded in full. This finds missing, empty,
    truncated, unrecognised and undecodable DICOM files cheaply. It does not find a complete
    PNG/JPEG whose compressed data is corrupt: only decoding every pixel would.
    """
    bad = {}
    for path in map(str, paths):
        try:
            with open(path, "rb") as f:
                head = f.read(_HEAD_BYTES)
                f.seek(max(f.seek(0, io.SEEK_END) - _TAIL_BYTES, 0))
                tail = f.read(_TAIL_BYTES)
            if not _is_complete_raster(head, tail):
                load_image(path, dicom_window)
        except ImageDecodeError as e:
            bad[path] = e.problem
        except OSError as e:
            bad[path] = "file not found" if isinstance(e, FileNotFoundError) else str(e)
    return bad


def _sniff_format(head: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"dicom"`` or None, from the first 132 bytes of a file."""
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SOI):
        return "jpeg"
    if head[DICOM_MAGIC_OFFSET:_HEAD_BYTES] == DICOM_MAGIC:
        return "dicom"
    return None


def _is_complete_raster(head: bytes, tail: bytes) -> bool:
    """True for a PNG ending in its IEND chunk or a JPEG ending in its EOI marker.

    Only these files take the fast in-graph decoder; a truncated file fails this test, because the
    end marker is the last thing written.
    """
    return (head.startswith(PNG_SIGNATURE) and tail.endswith(PNG_IEND_CHUNK)) or (
        head.startswith(JPEG_SOI) and tail.endswith(JPEG_EOI))


def _starts_with(value: tf.Tensor, prefix: bytes) -> tf.Tensor:
    return tf.equal(tf.strings.substr(value, 0, len(prefix)), prefix)


def _ends_with(value: tf.Tensor, suffix: bytes) -> tf.Tensor:
    start = tf.maximum(tf.strings.length(value) - len(suffix), 0)
    return tf.equal(tf.strings.substr(value, start, len(suffix)), suffix)


def _decode_raster(data: tf.Tensor) -> tf.Tensor:
    """PNG or JPEG bytes to [H, W, 1] float32 in [0, 1] with TensorFlow's decoders."""
    # Multiplying by the reciprocal, not dividing: grappler rewrites division by a constant into
    # exactly this inside tf.function, and the eager and graph paths must agree to the bit.
    image = tf.cond(
        _starts_with(data, PNG_SIGNATURE),
        lambda: tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32)
        * (1.0 / 65535.0),
        lambda: tf.cast(tf.io.decode_jpeg(data, channels=0), tf.float32) * (1.0 / 255.0),
    )
    return _to_one_channel(image)


def _to_one_channel(image: tf.Tensor) -> tf.Tensor:
    """Drop alpha; RGB to BT.601 luma; grey (with or without alpha) to its grey channel."""
    def luma():
        r, g, b = image[..., 0:1], image[..., 1:2], image[..., 2:3]
        return r * LUMA_WEIGHTS[0] + g * LUMA_WEIGHTS[1] + b * LUMA_WEIGHTS[2]

    return tf.cond(tf.shape(image)[-1] >= 3, luma, lambda: image[..., 0:1])


def _check_window_mode(dicom_window: str) -> None:
    if dicom_window not in DICOM_WINDOW_MODES:
        raise ValueError(f"dicom_window must be one of {DICOM_WINDOW_MODES}, got {dicom_window!r}")


def _decode_in_python(data: tf.Tensor, path: tf.Tensor, dicom_window: str) -> tf.Tensor:
    @tf.autograph.experimental.do_not_convert
    def decode(data, path):
        return decode_bytes(data.numpy(), path.numpy().decode(), dicom_window)

    return tf.py_function(decode, [data, path], tf.float32)[..., tf.newaxis]


def _raster_problem(kind: str, data: bytes, decoder_message: str) -> str:
    if kind == "png" and not data.endswith(PNG_IEND_CHUNK):
        return "truncated PNG: the file ends before the IEND chunk"
    if kind == "jpeg" and JPEG_EOI not in data[2:]:
        return "truncated JPEG: no end-of-image marker"
    message = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "", decoder_message).strip()
    return f"corrupt {kind.upper()} data ({message})"


def _decode_dicom(data: bytes, path, dicom_window: str) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except Exception as e:  # pydicom raises many types for malformed headers
        raise ImageDecodeError(path, f"unreadable DICOM header ({e})") from None
    if "PixelData" not in ds:
        raise ImageDecodeError(path, "DICOM file without pixel data")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageDecodeError(
            path, f"DICOM PhotometricInterpretation {photometric or 'missing'!s}: only greyscale "
                  "radiographs (MONOCHROME1/MONOCHROME2) are supported")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise ImageDecodeError(path, f"DICOM with {frames} frames; expected a single image")
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        stored = ds.pixel_array
    except RuntimeError as e:  # pydicom: no installed plugin can decompress this transfer syntax
        plugins = "; ".join(line.strip() for line in str(e).splitlines()[1:])
        raise ImageDecodeError(
            path, f"pixel data is compressed as {syntax.name} ({syntax}) and no installed decoder "
                  f"handles it ({plugins}). Install one of these or convert the file to an "
                  "uncompressed transfer syntax") from None
    except Exception as e:
        raise ImageDecodeError(path, f"cannot decode DICOM pixel data ({e})") from None

    if dicom_window == "auto" and _has_voi(ds):
        image = _apply_voi(stored, ds, path)
        return 1.0 - image if photometric == "MONOCHROME1" else image
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2 ** bits - 1
    image = ((stored.astype(np.float64) - low) / (high - low)).astype(np.float32)
    invert = (photometric == "MONOCHROME1") != (float(ds.get("RescaleSlope", 1) or 1) < 0)
    return 1.0 - image if invert else image


def _has_voi(ds) -> bool:
    """The test pydicom's ``apply_voi_lut`` uses to decide that a file has a VOI transform."""
    return _voi_lut(ds) is not None or None not in (ds.get("WindowCenter"), ds.get("WindowWidth"))


def _voi_lut(ds):
    """The first VOI LUT Sequence item when it is complete (the one ``apply_voi_lut`` prefers)."""
    lut = ds.get("VOILUTSequence")
    if lut and None not in (lut[0].get("LUTDescriptor"), lut[0].get("LUTData")):
        return lut[0]
    return None


def _apply_voi(stored: np.ndarray, ds, path) -> np.ndarray:
    """Modality LUT, then the VOI LUT or first window, scaled from its output range to [0, 1]."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(stored, ds)
    if np.issubdtype(values.dtype, np.floating) and np.array_equal(values, np.round(values)):
        values = values.astype(np.int64)  # pydicom warns that a LUT indexed by floats may be off
    try:
        shown = apply_voi_lut(values, ds).astype(np.float64)
        lut = _voi_lut(ds)
        if lut is not None:
            low, high = 0.0, float(2 ** int(lut.LUTDescriptor[2]) - 1)
        else:  # the window's own output range: what it maps the lowest and highest inputs to
            with np.errstate(over="ignore"):
                low, high = apply_voi_lut(np.array([-np.inf, np.inf]), ds).astype(np.float64)
    except (ValueError, NotImplementedError, TypeError, AttributeError) as e:
        raise ImageDecodeError(path, f"cannot apply the DICOM VOI LUT/window ({e}); pass "
                                     "dicom_window='off' to decode without it") from None
    if not high > low and not high < low:
        raise ImageDecodeError(path, f"DICOM VOI transform has an empty output range ({low}..{high})")
    return np.clip((shown - low) / (high - low), 0.0, 1.0).astype(np.float32)

