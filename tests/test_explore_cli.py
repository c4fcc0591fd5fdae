"""`conv3d explore` without a browser: the file it writes is one self-contained page (nothing
to fetch), the options only set where the sliders start, and a bad option says what it takes.
What the page shows is checked in Chromium by tests/test_browser_pages.py."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conv3d.cli import main
from conv3d.teach.cube import load_cube


def config_of(path):
    text = path.read_text(encoding="utf-8")
    return text, json.loads(re.search(r'id="explorer-config">(.*?)</script>', text, re.S).group(1))


def test_explore_writes_one_self_contained_page(tmp_path, capsys):
    path = tmp_path / "e.html"
    assert main(["explore", "--out", str(path)]) == 0
    assert str(path.resolve()) in capsys.readouterr().out
    text, config = config_of(path)
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", text) and "<link" not in text
    assert text.count("<script") == 2  # the settings (JSON) and the program, both inline
    cube = load_cube()
    np.testing.assert_array_equal(config["cube"]["input"], cube["input"])
    np.testing.assert_array_equal(config["cube"]["filter"], cube["filter"])
    assert config["initial"]["data"] == "cube" and "fixed" not in config


def test_explore_options_set_the_sliders(tmp_path):
    path = tmp_path / "e.html"
    assert main(["explore", "--out", str(path), "--input", "6", "--stride", "2", "--padding",
                 "same", "--dilation", "2", "--channels", "2", "--out-channels", "2"]) == 0
    _, config = config_of(path)
    assert config["initial"] == dict(input=6, kernel=3, stride=2, padding="same", dilation=2,
                                     channels=2, outchannels=2, data="formula")


@pytest.mark.parametrize("args,message", [
    (["--input", "9"], "--input must be from 1 to 8"),
    (["--padding", "full"], "--padding takes an int from 0 to 3 or 'same', got 'full'"),
    (["--padding", "4"], "--padding takes an int from 0 to 3 or 'same', got '4'"),
    (["--kernel", "x"], "--kernel takes an int from 1 to 5, got 'x'"),
])
def test_explore_bad_options_say_what_they_take(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["explore", "--out", str(tmp_path / "e.html"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "e.html").exists()
