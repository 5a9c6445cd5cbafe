import hashlib

import numpy as np
from PIL import Image

from tfcxr.data.demo import DEMO_LABELS, DemoSpec, ensure_demo_dataset, render_film, write_demo_dataset
from tfcxr.data.readers import read_dataset


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def test_demo_is_valid_nih_format_and_patient_disjoint(tmp_path):
    root = write_demo_dataset(tmp_path / "demo", DemoSpec(patients=30, image_size=64, seed=1))
    m = read_dataset("nih", root, labels=DEMO_LABELS)
    assert len(m) >= 30 and not m.leaking_patients()
    assert set(m.splits) == {"train", "val", "test"}
    with Image.open(m.paths[0]) as im:
        assert im.mode == "L" and im.size == (64, 64)
    assert (m.targets.sum(0) > 0).all()  # every finding occurs


def test_demo_is_deterministic_by_seed(tmp_path):
    a = write_demo_dataset(tmp_path / "a", DemoSpec(patients=8, image_size=48, seed=3))
    b = write_demo_dataset(tmp_path / "b", DemoSpec(patients=8, image_size=48, seed=3))
    c = write_demo_dataset(tmp_path / "c", DemoSpec(patients=8, image_size=48, seed=4))
    assert digest(a) == digest(b) != digest(c)


def test_findings_change_the_film_where_they_should():
    anatomy = {"body_w": 0.44, "lung_dx": 0.18, "lung_cy": 0.46, "lung_w": 0.13, "lung_h": 0.28,
               "heart_w": 0.1, "heart_dx": 0.03, "rib_phase": 0.0, "exposure": 1.0, "gamma": 1.0}
    size = 128

    def film(findings):
        return render_film(np.random.default_rng(0), anatomy, set(findings), size)

    normal = film([])
    heart_band = (slice(int(0.6 * size), int(0.7 * size)), slice(int(0.3 * size), int(0.45 * size)))
    # an enlarged heart brightens the band beside the normal heart shadow
    assert film(["Cardiomegaly"])[heart_band].mean() > normal[heart_band].mean() + 0.05
    lower_lungs = slice(int(0.6 * size), int(0.74 * size))
    assert film(["Effusion"])[lower_lungs].mean() > normal[lower_lungs].mean() + 0.01
    assert np.abs(film(["Pneumothorax"]) - normal).max() > 0.1


def test_nodules_are_one_to_three_small_bright_spots_inside_the_lungs():
    # What makes a Nodule film a Nodule film: beside the same film without it (same anatomy, same
    # lung markings), one to three compact round spots brighter by ~0.3, each a few pixels across
    # and centred in a lung field; nothing changes elsewhere but the film's noise (sd 0.015).
    from scipy import ndimage

    anatomy = {"body_w": 0.44, "lung_dx": 0.18, "lung_cy": 0.46, "lung_w": 0.13, "lung_h": 0.28,
               "heart_w": 0.1, "heart_dx": 0.03, "rib_phase": 0.0, "exposure": 1.0, "gamma": 1.0}
    size = 128
    for seed in range(6):
        normal = render_film(np.random.default_rng(seed), anatomy, set(), size)
        nodule = render_film(np.random.default_rng(seed), anatomy, {"Nodule"}, size)
        spots, count = ndimage.label(nodule - normal > 0.15)  # 7 noise sds: only the spots
        assert 1 <= count <= 3, (seed, count)
        for k in range(1, count + 1):
            area = (spots == k).sum()
            assert 4 <= area <= 130, (seed, area)  # radius 0.032-0.045 of the film: small
            cy, cx = (np.array(ndimage.center_of_mass(spots == k)) + 0.5) / size
            in_lung = [((cx - (0.5 + side * anatomy["lung_dx"])) / anatomy["lung_w"]) ** 2
                       + ((cy - anatomy["lung_cy"]) / anatomy["lung_h"]) ** 2 < 1
                       for side in (-1, 1)]
            assert any(in_lung), (seed, cx, cy)
            assert (nodule - normal)[spots == k].max() > 0.25  # bright, not a faint patch


def test_demo_reader_writes_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFCXR_CACHE", str(tmp_path))
    spec = DemoSpec(patients=6, image_size=32)
    first = ensure_demo_dataset(spec=spec)
    stamp = (first / "demo.json").stat().st_mtime_ns
    assert ensure_demo_dataset(spec=spec) == first
    assert (first / "demo.json").stat().st_mtime_ns == stamp
