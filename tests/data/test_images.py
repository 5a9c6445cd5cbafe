"""Decoding into one channel in [0, 1]: real NIH files, synthetic files with known values."""

import struct
import zlib

import numpy as np
import pytest
from dicom_files import write_dicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGLSLossless

from tfcxr.backend import tf
from tfcxr.data.images import decode_image, find_bad_images, load_image
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.errors import ImageDecodeError
from tfcxr.preprocessing import PreprocessingSpec

NIH_RGBA = ["00000100_000.png", "00001369_000.png", "00002578_000.png", "00004934_000.png",
            "00005224_000.png", "00005813_000.png"]
NIH_GREY = ["00000075_000.png", "00000129_000.png"]
ULP = 1.2e-7  # float32 spacing just below 1.0 is 6e-8; allow two steps


def png_bytes(pixels: np.ndarray, color_type: int) -> bytes:
    """A PNG written byte by byte: PIL cannot write 16-bit RGB or 16-bit grey+alpha."""
    height, width = pixels.shape[:2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    raw = b"".join(b"\x00" + row.astype(f">u{depth // 8}").tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def decode_in_pipeline(*paths):
    """The tf.data path, exactly as build_dataset runs it."""
    ds = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).map(decode_image)
    return [image[..., 0] for image in ds.as_numpy_iterator()]


def test_nih_grey_png_is_value_over_255(nih_sample):
    for name in NIH_GREY:
        path = nih_sample / "images" / name
        image = load_image(path)
        reference = np.asarray(Image.open(path), np.float64) / 255
        assert image.shape == (256, 256) and image.dtype == np.float32
        np.testing.assert_allclose(image, reference, rtol=0, atol=ULP)


def test_nih_rgba_pngs_collapse_to_their_grey_value(nih_sample):
    for name in NIH_RGBA:
        path = nih_sample / "images" / name
        rgba = np.asarray(Image.open(path))
        assert rgba.shape == (256, 256, 4)  # the quirk this test is about
        image = load_image(path)
        assert image.shape == (256, 256) and image.dtype == np.float32
        np.testing.assert_allclose(image, rgba[..., 0] / 255, rtol=0, atol=ULP)


def test_eight_bit_png_exact_scale(tmp_path):
    path = tmp_path / "ramp.png"
    Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16)).save(path)
    np.testing.assert_allclose(load_image(path).ravel(), np.arange(256) / 255, rtol=0, atol=ULP)


def test_sixteen_bit_png_scaled_by_65535_not_clipped_at_255(tmp_path):
    values = np.array([[0, 1, 255, 256], [4095, 40000, 65534, 65535]], np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    image = load_image(path)
    np.testing.assert_allclose(image, values / 65535, rtol=0, atol=ULP)
    assert abs(image[1, 1] - 40000 / 65535) < ULP  # 0.61, where 8-bit handling would give 1.0


def test_colour_and_alpha_rule(tmp_path):
    """Alpha dropped; RGB to BT.601 luma; grey+alpha keeps its grey; 16 bits kept in colour too."""
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.concatenate([rgb, np.full((1, 4, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(np.array([[[100, 3]]], np.uint8), mode="LA").save(tmp_path / "la.png")
    rgb16 = np.array([[[40000, 40000, 40000], [1000, 2000, 3000]]], np.uint16)
    (tmp_path / "rgb16.png").write_bytes(png_bytes(rgb16, color_type=2))
    (tmp_path / "la16.png").write_bytes(png_bytes(np.array([[[40000, 7]]], np.uint16), color_type=4))

    luma = (rgb @ np.array([0.299, 0.587, 0.114])) / 255
    np.testing.assert_allclose(load_image(tmp_path / "rgb.png"), luma, rtol=0, atol=ULP)
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png"), luma, rtol=0, atol=ULP)
    np.testing.assert_allclose(load_image(tmp_path / "la.png"), [[100 / 255]], rtol=0, atol=ULP)
    np.testing.assert_allclose(load_image(tmp_path / "rgb16.png"),
                               (rgb16 @ np.array([0.299, 0.587, 0.114])) / 65535, rtol=0, atol=ULP)
    np.testing.assert_allclose(load_image(tmp_path / "la16.png"), [[40000 / 65535]], rtol=0, atol=ULP)


def test_jpeg_grey_and_colour(tmp_path):
    smooth = np.tile(np.linspace(20, 230, 32).astype(np.uint8), (32, 1))
    Image.fromarray(smooth).save(tmp_path / "grey.jpg", quality=100)
    Image.fromarray(np.stack([smooth] * 3, axis=-1)).save(tmp_path / "rgb.jpg", quality=100)
    for name in ("grey.jpg", "rgb.jpg"):
        image = load_image(tmp_path / name)
        assert image.shape == (32, 32) and image.dtype == np.float32
        np.testing.assert_allclose(image, smooth / 255, rtol=0, atol=3 / 255)


def test_dicom_bits_stored_monochrome1_and_rescale(tmp_path):
    stored = np.array([[0, 1, 2048], [4000, 4095, 100]], np.uint16)
    expected = stored / 4095  # BitsStored=12: the uint16 container's 65535 is not the white level
    cases = {
        "mono2.dcm": ({}, expected),
        "mono1.dcm": ({"photometric": "MONOCHROME1"}, 1 - expected),
        "rescaled.dcm": ({"RescaleSlope": 2, "RescaleIntercept": -1024}, expected),
        "negative_slope.dcm": ({"RescaleSlope": -1, "RescaleIntercept": 0}, 1 - expected),
    }
    for name, (options, want) in cases.items():
        image = load_image(write_dicom(tmp_path / name, stored, **options))
        assert image.dtype == np.float32 and image.shape == (2, 3)
        np.testing.assert_allclose(image, want, rtol=0, atol=ULP, err_msg=name)


def test_dicom_signed_pixels_span_the_stored_range(tmp_path):
    stored = np.array([[-2048, 0, 2047]], np.int16)
    image = load_image(write_dicom(tmp_path / "signed.dcm", stored, signed=True))
    np.testing.assert_allclose(image, (stored + 2048) / 4095, rtol=0, atol=ULP)


def test_compressed_dicom_without_handler_names_file_and_syntax(tmp_path):
    path = write_dicom(tmp_path / "jpegls.dcm", np.zeros((2, 2), np.uint16), syntax=JPEGLSLossless,
                       pixel_data=encapsulate([b"\xff\xd8\xff\xf7 not really JPEG-LS"]))
    with pytest.raises(ImageDecodeError, match="JPEG-LS") as error:
        load_image(path)
    assert error.value.path == path and str(path) in str(error.value)


def test_both_paths_give_identical_numbers(tmp_path, nih_sample):
    """load_image (numpy) and decode_image (tf.data; fast path or py_function) agree to the bit."""
    smooth = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (24, 1))
    Image.fromarray(smooth).save(tmp_path / "grey.jpg", quality=90)
    Image.fromarray(np.stack([smooth, smooth // 2, 255 - smooth], -1)).save(tmp_path / "rgb.jpg")
    (tmp_path / "trailing.jpg").write_bytes((tmp_path / "grey.jpg").read_bytes() + b"\x00" * 10)
    Image.fromarray(np.array([[0, 255, 40000, 65535]], np.uint16)).save(tmp_path / "sixteen.png")
    Image.fromarray(np.stack([smooth, smooth // 3, smooth, smooth], -1)).save(tmp_path / "rgba.png")
    (tmp_path / "rgb16.png").write_bytes(png_bytes(np.full((2, 2, 3), 40000, np.uint16), 2))
    write_dicom(tmp_path / "mono1.dcm", np.array([[0, 100], [4095, 7]]), photometric="MONOCHROME1")
    paths = sorted(tmp_path.iterdir()) + [nih_sample / "images" / n for n in NIH_GREY + NIH_RGBA]
    for path, in_graph in zip(paths, decode_in_pipeline(*paths)):
        numpy_image = load_image(path)
        assert in_graph.dtype == np.float32
        assert np.array_equal(in_graph, numpy_image), path.name


def test_truncated_png_names_the_file_in_both_paths(tmp_path, nih_sample):
    data = (nih_sample / "images" / NIH_GREY[0]).read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="truncated PNG") as error:
        load_image(path)
    assert error.value.path == path and str(path) in str(error.value)
    with pytest.raises(tf.errors.OpError, match=f"{path}: truncated PNG"):
        decode_in_pipeline(path)


@pytest.mark.parametrize("name, content, problem", [
    ("empty.png", b"", "empty file"),
    ("page.png", b"<html>Not Found</html>", "not a PNG, JPEG or DICOM"),
    ("cut.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "truncated JPEG"),
    ("header.dcm", b"\x00" * 128 + b"DICM" + b"\x02\x00", "DICOM"),
])
def test_bad_files_raise_image_decode_error(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=problem) as error:
        load_image(path)
    assert str(path) in str(error.value)
    with pytest.raises(ImageDecodeError, match="file not found"):
        load_image(tmp_path / "missing.png")


def test_find_bad_images(tmp_path, nih_sample):
    good = nih_sample / "images" / NIH_GREY[0]
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:-100])
    dicom = write_dicom(tmp_path / "ok.dcm", np.zeros((2, 2), np.uint16))
    missing = tmp_path / "missing.png"
    bad = find_bad_images([good, truncated, dicom, missing])
    assert set(bad) == {str(truncated), str(missing)}
    assert "truncated" in bad[str(truncated)] and bad[str(missing)] == "file not found"


def linear_window(values, center, width):
    """DICOM PS3.3 C.11.2.1.2.1 (VOILUTFunction LINEAR), written out, mapped to [0, 1]."""
    values = np.asarray(values, np.float64)
    scaled = (values - (center - 0.5)) / (width - 1) + 0.5
    scaled[values <= center - 0.5 - (width - 1) / 2] = 0.0
    scaled[values > center - 0.5 + (width - 1) / 2] = 1.0
    return scaled


def test_dicom_window_is_applied_by_default(tmp_path):
    """12 bits stored in 16: a window of 1024 around 2048 stretches that band over [0, 1]."""
    stored = np.array([[0, 1536, 1800, 2048], [2300, 2559, 2560, 4095]], np.uint16)
    window = {"WindowCenter": 2048, "WindowWidth": 1024}
    want = linear_window(stored, 2048, 1024)
    assert want.min() == 0 and want.max() == 1 and 0 < want[0, 2] < want[1, 0] < 1
    cases = {
        "mono2.dcm": ({}, want),
        "mono1.dcm": ({"photometric": "MONOCHROME1"}, 1 - want),
        # the window is in modality units: slope 2, intercept -1024 moves the stored band
        "rescaled.dcm": ({"RescaleSlope": 2, "RescaleIntercept": -1024},
                         linear_window(stored * 2.0 - 1024, 2048, 1024)),
        "sixteen_bit.dcm": ({"bits_stored": 16}, want),
    }
    for name, (options, expected) in cases.items():
        path = write_dicom(tmp_path / name, stored, **window, **options)
        image = load_image(path)
        assert image.dtype == np.float32 and image.shape == stored.shape
        np.testing.assert_allclose(image, expected, rtol=0, atol=ULP, err_msg=name)
        # "off": the stored bits only, exactly what a file without a window gives
        bits = options.get("bits_stored", 12)
        plain = stored / (2 ** bits - 1)
        negative = options.get("photometric") == "MONOCHROME1"
        np.testing.assert_allclose(load_image(path, dicom_window="off"),
                                   1 - plain if negative else plain, rtol=0, atol=ULP, err_msg=name)


def test_dicom_sigmoid_window_and_several_windows(tmp_path):
    stored = np.array([[1000, 2048, 3000]], np.uint16)
    sigmoid = write_dicom(tmp_path / "sigmoid.dcm", stored, WindowCenter=2048, WindowWidth=1000,
                          VOILUTFunction="SIGMOID")
    np.testing.assert_allclose(load_image(sigmoid), 1 / (1 + np.exp(-4 * (stored - 2048.0) / 1000)),
                               rtol=0, atol=1e-6)
    several = write_dicom(tmp_path / "two.dcm", stored, WindowCenter=[2048, 500],
                          WindowWidth=[1024, 200])  # the first pair is the primary window
    np.testing.assert_allclose(load_image(several), linear_window(stored, 2048, 1024), atol=ULP)


def test_dicom_voi_lut_sequence_is_preferred_to_the_window(tmp_path):
    item = Dataset()
    item.LUTDescriptor = [4, 10, 8]  # 4 entries, first mapped value 10, 8 bits per entry
    item.add_new(0x00283006, "US", [0, 60, 200, 255])  # LUTData; its VR is "US or OW"
    stored = np.array([[0, 10, 11, 12, 13, 500]], np.uint16)
    path = write_dicom(tmp_path / "lut.dcm", stored, VOILUTSequence=Sequence([item]),
                       WindowCenter=2048, WindowWidth=1024)
    np.testing.assert_allclose(load_image(path), np.array([[0, 0, 60, 200, 255, 255]]) / 255,
                               rtol=0, atol=ULP)


def test_dicom_window_same_in_pipeline_and_through_the_spec(tmp_path):
    stored = np.tile(np.linspace(0, 4095, 16).astype(np.uint16), (16, 1))
    path = write_dicom(tmp_path / "w.dcm", stored, photometric="MONOCHROME1",
                       WindowCenter=1500, WindowWidth=800)
    for mode in ("auto", "off"):
        ds = tf.data.Dataset.from_tensors(str(path)).map(lambda p: decode_image(p, mode))
        assert np.array_equal(next(iter(ds)).numpy()[..., 0], load_image(path, mode)), mode
    manifest = Manifest("csv", tmp_path, ("A",), [str(path)], ["w"], ["p"], [""], ["test"],
                        np.zeros((1, 1)), np.ones((1, 1)))
    batches = {}
    for mode in ("auto", "off"):
        spec = PreprocessingSpec(image_size=16, channels=1, mean=(0.0,), std=(1.0,),
                                 dicom_window=mode)
        images, _, _ = next(iter(build_dataset(manifest, spec, training=False, batch_size=1)))
        batches[mode] = images.numpy()[0, ..., 0]
        np.testing.assert_allclose(batches[mode], load_image(path, mode), atol=1e-6)
    assert not np.allclose(batches["auto"], batches["off"])
    with pytest.raises(ValueError, match="dicom_window"):
        PreprocessingSpec(dicom_window="yes")


def test_unusable_window_names_the_file(tmp_path):
    path = write_dicom(tmp_path / "zero.dcm", np.zeros((2, 2), np.uint16), WindowCenter=10,
                       WindowWidth=0)
    with pytest.raises(ImageDecodeError, match="VOI LUT/window") as error:
        load_image(path)
    assert str(path) in str(error.value)
    assert load_image(path, dicom_window="off").max() == 0
