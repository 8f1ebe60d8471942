"""`embedlab run --report`: the self-contained HTML page, read back by a real headless browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from embedlab.cli import main

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXPERIMENT = """
[dataset]
path = "{path}"
split = "test"

[experiment]
metrics = ["nDCG@10", "R@100"]
baseline = "small"

[[pipeline]]
name = "small"
encoder = { name = "hashing", dim = 32 }

[[pipeline]]
name = "large"
encoder = { name = "hashing", dim = 1024 }

[[pipeline]]
name = "fused"
retrievers = ["small", "large"]
fusion = { method = "rrf" }
"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "exp.toml").write_text(EXPERIMENT.replace("{path}", str(SHARED_DATA / "adi" / "beir")))
    page = root / "report.html"
    assert main(["run", str(root / "exp.toml"), "--report", str(page), "--cache-dir", str(root / "cache"),
                 "--quiet"]) == 0
    return page


def test_page_is_self_contained_and_complete(report):
    text = report.read_text(encoding="utf-8")
    assert "<table class=\"results\">" in text and text.count("<tr>") == 4  # header + 3 pipelines
    assert not re.search(r"""(src|href)=["'](https?:|//)""", text)  # nothing fetched from elsewhere
    assert text.count('class="diff"') == 2 * 35  # two pipelines against the baseline, ADI's 35 queries
    assert text.count('class="point"') == 6  # three pipelines in each scatter plot
    assert "content_sha256" in text and "fusion" in text


def test_a_real_browser_renders_the_page(report, tmp_path):
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    command = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert 'data-ready="1"' in dom  # the page's script ran to its end in the browser
    assert dom.count("<circle") == 6 and dom.count('class="diff"') == 70
    assert "fused" in dom and "small (baseline)" in dom
    shot = tmp_path / "page.png"
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                           "--window-size=1200,1600", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.stat().st_size > 10_000  # a rendered page, not a blank one
