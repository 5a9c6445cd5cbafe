"""A run config that trains in seconds: a small demo dataset (48 px films) read at 32 px,
batch 8, a quarter of the patients for validation; ``sections`` add to or replace the config's
top-level sections (``data`` is merged)."""

from pathlib import Path

import yaml

from tfcxr.data.demo import DemoSpec, write_demo_dataset


def tiny_demo_config(base: Path, *, patients: int, seed: int, name: str = "tiny.yaml",
                     **sections) -> Path:
    demo = write_demo_dataset(base / "demo", DemoSpec(patients=patients, image_size=48, seed=seed))
    config = {"seed": 0,
              "data": {"dataset": "demo", "root": str(demo), "image_size": 32, "batch_size": 8,
                       "options": {"val_fraction": 0.25}, **sections.pop("data", {})},
              **sections}
    path = base / name
    path.write_text(yaml.safe_dump(config))
    return path
