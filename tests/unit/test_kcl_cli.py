"""``streamrec consume --runtime kcl``: clear refusals before any daemon starts."""

from __future__ import annotations

import pytest

from infra import kcl
from streamrec.cli import main


def test_until_caught_up_is_refused_for_the_kcl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consume", "--runtime", "kcl", "--until-caught-up"]) == 2
    assert "--until-caught-up is for the embedded runtime" in capsys.readouterr().err


def test_without_java_the_kcl_runtime_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(kcl.shutil, "which", lambda name: None)
    assert main(["consume", "--runtime", "kcl", "--worker-id", "w"]) == 2
    assert "needs Java 17+" in capsys.readouterr().err
