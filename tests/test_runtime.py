"""rlgen_utils.runtime: profiles, choose, seeding, device choice, record/read-back."""
import json

import numpy as np
import pytest
import torch

from rlgen_utils.runtime import ProfileError, choose, get_device, read_records, record, resolve_profile, seed_everything


def test_profile_validation(monkeypatch):
    assert resolve_profile("smoke") == "smoke"
    assert resolve_profile(" FULL ") == "full"
    monkeypatch.setenv("RLGEN_PROFILE", "smoke")
    assert resolve_profile(None) == "smoke"
    monkeypatch.delenv("RLGEN_PROFILE")
    assert resolve_profile(None) == "full"
    with pytest.raises(ProfileError, match=r"unknown profile 'fast'.*smoke, full.*parameters cell"):
        resolve_profile("fast")
    monkeypatch.setenv("RLGEN_PROFILE", "quick")
    with pytest.raises(ProfileError, match="RLGEN_PROFILE"):
        resolve_profile(None)


def test_choose_picks_profile_and_demands_same_keys():
    assert choose("smoke", smoke={"n": 1}, full={"n": 9}) == {"n": 1}
    with pytest.raises(ProfileError, match="different keys"):
        choose("full", smoke={"n": 1}, full={"m": 9})
    with pytest.raises(ProfileError, match="missing"):
        choose("full", full={"n": 9})


def test_seed_everything_is_deterministic():
    seed_everything(3)
    a = (np.random.rand(), torch.rand(3))
    seed_everything(3)
    b = (np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_device_choice(monkeypatch):
    monkeypatch.delenv("RLGEN_DEVICE", raising=False)
    assert get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="not available here: use 'cpu'"):
            get_device("cuda")
        assert get_device().type in ("cpu", "mps")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_device("tpu")
    assert get_device(cpu_bound=True) == torch.device("cpu")  # env stepping, tabular, tree search: the CPU
    monkeypatch.setenv("RLGEN_DEVICE", "cpu")
    assert get_device() == torch.device("cpu") and get_device(cpu_bound=True) == torch.device("cpu")


def test_record_outside_ipython_prints_and_rejects_bad_values(capsys):
    assert record("a/b", np.float32(0.25)) == np.float32(0.25)
    assert "a/b = 0.25" in capsys.readouterr().out
    with pytest.raises(ValueError, match="finite"):
        record("a/nan", float("nan"))
    with pytest.raises(TypeError, match="numbers, strings"):
        record("a/obj", object())


def test_record_round_trip_through_an_executed_notebook(tiny_notebook, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    path = tiny_notebook(body='import torch\nrecord("t/tensor", torch.tensor(1.5))\nrecord("t/list", [1, 2])\n'
                              'record("t/text", "hi")')
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    assert read_records(path) == {"t/tensor": 1.5, "t/list": [1, 2], "t/text": "hi"}
    # The stored form is a display_data output with the custom MIME type, and a readable text.
    outputs = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "display_data"]
    assert outputs[0].data["text/plain"] == "t/tensor = 1.5"
    assert json.loads(json.dumps(outputs[0].data["application/vnd.rlgen.record+json"]))["value"] == 1.5


def test_read_records_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        read_records(tmp_path / "nope.ipynb")
