"""Importing tfcxr starts no device, so device settings made afterwards still apply."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import tfcxr, tfcxr.models, tfcxr.distill, tfcxr.data.pipeline, tfcxr.cli
    from tfcxr.backend import devices_started, start_devices, tf

    assert not devices_started(), "importing tfcxr started TensorFlow's devices"
    cpu = tf.config.list_physical_devices("CPU")[0]
    # Both raise "cannot be modified after being initialized" once the devices have started.
    tf.config.set_visible_devices([cpu], "CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    names = start_devices(memory_growth=True)
    assert devices_started()
    print(len([n for n in names if "CPU" in n]))
""")


def test_import_starts_no_device_and_settings_still_apply():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "2"  # the two logical CPUs configured after the import


def test_start_devices_refuses_settings_it_can_no_longer_apply():
    from tfcxr.backend import start_devices, tf

    tf.constant(0)  # devices started
    gpus = len(tf.config.list_physical_devices("GPU"))
    names = start_devices()
    assert any("CPU" in n for n in names)

    from tfcxr.errors import ConfigError

    with pytest.raises(ConfigError, match="visible GPU|already started"):
        start_devices(visible_gpus=list(range(gpus + 1)))
