"""Models shared by the Grad-CAM tests: building and quantizing them is most of the test time."""

import pytest
from cam_helpers import blob_images, random_model

from tfcxr.data.labels import NIH_LABELS
from tfcxr.quantize import quantize_model

STUDENT_SIZE = 128


@pytest.fixture(scope="session")
def student():
    """MobileNetV3-Small, 14 NIH labels, 128 px (4x4 Grad-CAM maps), random but not trivial."""
    return random_model("mobilenet_v3_small", len(NIH_LABELS), STUDENT_SIZE,
                        blob_images(16, STUDENT_SIZE, seed=1), seed=1)


@pytest.fixture(scope="session")
def qat_student(student):
    return quantize_model(student)
