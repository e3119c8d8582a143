"""GPU detection from PCI facts: both answers, and the sysfs reader on a fake tree."""
from ansible_collections.llmops.platform.plugins.module_utils.nodes.pci import (
    nvidia_gpus,
    read_pci_devices,
)

T4 = {"address": "0000:00:1e.0", "vendor": "0x10de", "device": "0x1eb8", "class": "0x030200"}
T4_AUDIO = {"address": "0000:00:1e.1", "vendor": "0x10de", "device": "0x10f8", "class": "0x040300"}
VIRTIO = {"address": "0000:00:03.0", "vendor": "0x1af4", "device": "0x1000", "class": "0x020000"}


def test_no_gpu_on_a_virtio_host():
    assert nvidia_gpus([VIRTIO]) == []
    assert nvidia_gpus([]) == []
    assert nvidia_gpus(None) == []


def test_nvidia_display_function_is_a_gpu_but_its_audio_function_is_not():
    assert [d["address"] for d in nvidia_gpus([VIRTIO, T4, T4_AUDIO])] == ["0000:00:1e.0"]


def test_vendor_spellings_from_inventories():
    for vendor in ("10de", "0x10DE", 0x10DE):
        assert nvidia_gpus([{"vendor": vendor}]), vendor
    assert nvidia_gpus([{"vendor": "0x8086", "class": "0x030000"}]) == []


def test_read_sysfs_tree(tmp_path):
    for dev in (T4, VIRTIO):
        base = tmp_path / dev["address"]
        base.mkdir()
        for key in ("vendor", "device", "class"):
            (base / key).write_text(dev[key].upper().replace("0X", "0x") + "\n")
    devices = read_pci_devices(str(tmp_path))
    assert [d["vendor"] for d in devices] == ["0x1af4", "0x10de"]
    assert nvidia_gpus(devices)[0]["device"] == "0x1eb8"


def test_missing_sysfs_means_no_devices(tmp_path):
    assert read_pci_devices(str(tmp_path / "absent")) == []
