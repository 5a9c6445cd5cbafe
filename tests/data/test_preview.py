from click.testing import CliRunner
from PIL import Image

from tfcxr.cli import main


def test_preview_of_real_films_writes_a_png(nih_sample, tmp_path):
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["data", "preview", "--dataset", "nih", "--root", str(nih_sample),
                                       "--count", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 200


def test_preview_needs_a_root_for_real_datasets(tmp_path):
    result = CliRunner().invoke(main, ["data", "preview", "--dataset", "nih", "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "data.root is required" in result.output
    assert not (tmp_path / "p.png").exists()
