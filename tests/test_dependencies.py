from importlib import metadata

import pytest
from transformers.integrations import peft as transformers_peft

from unispeech.dependencies import IncompatibleVersionsError, check_peft, declared_range
from unispeech.model.adapters import add_task_adapter, load_task_adapter
from unispeech.testing import tiny_model

A_PEFT_THAT_DOES_NOT_EXIST = "99.0.0"


def test_the_installed_pair_works():
    check_peft()  # the environment the tests run in is the lock's


def test_declared_ranges_come_from_the_package_metadata():
    assert declared_range("peft").startswith("peft") and "<=" in declared_range("peft")
    assert declared_range("no-such-package") == "no-such-package"


@pytest.fixture
def transformers_wants_a_newer_peft(monkeypatch):
    monkeypatch.setattr(transformers_peft, "MIN_PEFT_VERSION", A_PEFT_THAT_DOES_NOT_EXIST)


@pytest.mark.usefixtures("transformers_wants_a_newer_peft")
def test_a_refused_peft_is_named_in_one_line_with_the_fix():
    with pytest.raises(IncompatibleVersionsError) as error:
        check_peft()
    message = str(error.value)
    assert "\n" not in message
    assert f"needs peft >= {A_PEFT_THAT_DOES_NOT_EXIST}" in message
    assert f"peft {metadata.version('peft')} is installed" in message
    assert "constraints.txt" in message and declared_range("transformers") in message


@pytest.mark.usefixtures("transformers_wants_a_newer_peft")
def test_adapter_calls_stop_before_peft_does(tmp_path):
    model, _ = tiny_model()
    with pytest.raises(IncompatibleVersionsError):
        add_task_adapter(model, "asr")
    with pytest.raises(IncompatibleVersionsError):
        load_task_adapter(model, tmp_path)  # checked before the folder is even read
