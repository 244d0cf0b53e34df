"""The HTML report: self-contained, and every figure renders in a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from automl_noisy.cli import main

FIGURES = ("fig-effects", "fig-interactions", "fig-importances", "fig-history", "fig-accuracy")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class _FigureSvgs(HTMLParser):
    """For each element whose id names a figure: the classes of the elements inside it."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.inside: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for owner in {o for o in self.stack if o}:
            self.inside[owner] += [tag, *(attrs.get("class") or "").split()]
        if tag in self.VOID:
            return
        fig = attrs.get("id") if (attrs.get("id") or "").startswith("fig-") else None
        if fig:
            self.inside[fig] = []
        self.stack.append(fig)

    def handle_startendtag(self, tag, attrs):
        for owner in {o for o in self.stack if o}:
            self.inside[owner] += [tag, *(dict(attrs).get("class") or "").split()]

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()


@pytest.fixture(scope="module")
def report(effects_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--storage", effects_study, "-o", str(out)]) == 0
    return out


def test_report_is_one_self_contained_page(report):
    page = report.read_text(encoding="utf-8")
    assert "<script src=" not in page and "<link" not in page and "<iframe" not in page
    assert page.count("Plotly.newPlot") == len(FIGURES)
    for fig in FIGURES:
        assert f'id="{fig}"' in page
    assert "pipeline:" in page and "loss:" in page  # the best pipeline as YAML
    summary = page[page.index("<h2>Verdicts</h2>"):page.index("<h2>Effects against")]
    assert "loss=gce" in summary and "mixing=mixup" in summary and "selection=aum" in summary
    assert report.stat().st_size < 6_000_000


def test_every_figure_renders_in_headless_chromium(report, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium binary on PATH (apt-get install chromium; .ci/run installs it)")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
           "--dump-dom", report.as_uri()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    parser = _FigureSvgs()
    parser.feed(result.stdout)
    for fig in FIGURES:
        inside = parser.inside.get(fig)
        assert inside is not None, f"{fig} missing from the rendered page"
        assert "main-svg" in inside and "svg" in inside, f"{fig} did not render: {inside[:20]}"
    # the bars, the heatmap and the scatter points were drawn, not just empty axes
    assert "bars" in parser.inside["fig-effects"] or "trace" in parser.inside["fig-effects"]
    assert "hm" in parser.inside["fig-interactions"] or "heatmaplayer" in parser.inside["fig-interactions"]
