from pathlib import Path

import pytest

import tfcxr.config as config_module
from tfcxr.config import load_data_config, load_run_config, shipped_configs
from tfcxr.errors import ConfigError
from tfcxr.models import list_models

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "tfcxr" / "configs").glob("**/*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    config = load_data_config(path)
    assert config.dataset in {"demo", "nih", "chexpert", "padchest"}
    config.augment_config()
    run = load_run_config(path)  # every section, strictly
    assert run.student.name in list_models("student") and run.teacher.name in list_models()


def test_paper_settings_are_shipped():
    assert {p.stem for p in CONFIGS} >= {"demo", "nih", "chexpert", "padchest", "nih-sample"}
    paper = [p for p in CONFIGS if p.parent.name == "paper"]
    assert {p.stem for p in paper} == {"nih", "chexpert", "padchest"}
    for path in paper:
        run = load_run_config(path)
        assert (run.data.image_size, run.teacher.name, run.student.name) == (224, "densenet161", "eeea_net_c2")
        assert (run.distill.hard_loss, run.distill.alpha, run.distill.temperature) == ("focal", 0.5, 2.0)


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  dataset: demo\n  batchsize: 8\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['batchsize'\]"):
        load_data_config(path)


def test_bad_augment_range_is_a_config_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  augment: {zoom: 2.0}\n")
    with pytest.raises(ConfigError, match="data.augment.*zoom"):
        load_data_config(path)


def test_real_dataset_needs_a_root():
    with pytest.raises(ConfigError, match="data.root is required"):
        load_data_config(None, dataset="nih")


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid YAML"):
        load_data_config(path)


def test_overrides_win(tmp_path):
    config = load_data_config(Path(CONFIGS[0]).parent / "demo.yaml", batch_size=4)
    assert config.batch_size == 4


def test_shipped_configs_load_by_name():
    assert {"demo", "nih", "paper/nih", "nih-sample"} <= set(shipped_configs())
    assert load_run_config("paper/nih").data.image_size == 224
    assert load_run_config("nih-sample.yaml").data.dataset == "nih"
    with pytest.raises(ConfigError, match=r"nope: no such config file.*shipped: .*demo"):
        load_run_config("nope")


def test_a_missing_default_config_is_an_error_not_silent_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "SHIPPED_CONFIGS", tmp_path)
    with pytest.raises(ConfigError, match="default config demo.yaml is missing"):
        load_run_config()
