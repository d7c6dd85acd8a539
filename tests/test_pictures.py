"""Pictures (issue 11, item 8): the simulated LR curve as a sparkline under a schedule finding in text
output, and `nnlint --confirm --report DIR`'s page with the LR curves and gradient maps.

Everything goes through the real CLI on a small project: two schedule scripts, two batch-mixing models and
two models declared causal, in a directory whose name needs escaping in HTML. The page is parsed with
html5lib in strict mode (any parse error fails), its PNGs are decoded with Pillow, and it is opened in
headless Chromium when one is installed (`apt-get install chromium`): the browser's screenshot must show
the pictures' colours, which nothing else on the page uses.
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

pytest.importorskip("torch")
html5lib = pytest.importorskip("html5lib")
Image = pytest.importorskip("PIL.Image")

from nnlint.report.sparkline import BLOCKS, lr_line, sparkline  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ODD = "<i>\"runs\"&'x'"  # a directory name that breaks a page that forgets to escape
MIXING = '''\
"""Two conv nets whose samples leak into each other in eval()."""

import torch
from torch import nn


class AnchoredNet(nn.Module):
    """Every sample's output adds sample 0's features: sample 0 leaks into all, nothing else leaks."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        h = self.conv(x)
        return h + h[:1]


class BatchSoftmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        b, c, h, w = x.shape
        return torch.softmax(self.conv(x).reshape(b, -1), 0)
'''
SPARK = re.compile(f"[{BLOCKS}]")
C0_BLUE, C1_ORANGE, RED = (31, 119, 180), (255, 127, 14), (255, 0, 0)  # per epoch, every batch; map boxes


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pictures")
    causal = FIXTURES / "confirm" / "causal"
    shutil.copy(causal / "pyproject.toml", root / "pyproject.toml")  # the causal models' settings
    shutil.copy(causal / "decoder.py", root / "decoder.py")
    shutil.copy(causal / "wavenet.py", root / "wavenet.py")
    (root / ODD).mkdir()
    shutil.copy(FIXTURES / "confirm" / "schedules" / "short_run.py", root / ODD / "short_run.py")
    shutil.copy(FIXTURES / "confirm" / "schedules" / "cosine_per_batch.py", root / "cosine_per_batch.py")
    shutil.copy(FIXTURES / "buggy_vit" / "train.py", root / "vit_train.py")
    (root / ODD / "mixing.py").write_text(MIXING)
    return root


def _in(directory: Path, *args: str):
    """`nnlint ARGS` run from `directory`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        return invoke(*args)


@pytest.fixture(scope="module")
def text_run(project):
    """The text output of `nnlint --confirm --report report .`, and the page it wrote."""
    outcome = _in(project, "--confirm", "--report", "report", ".")
    assert outcome.exit_code == 1, outcome.stderr
    assert outcome.stderr.strip().endswith(f"nnlint: report written to {Path('report') / 'index.html'}")
    return outcome.stdout, project / "report" / "index.html"


@pytest.fixture(scope="module")
def evidence(project):
    """(code, file name, line) -> evidence, from `nnlint --confirm --format json .`."""
    outcome = _in(project, "--confirm", "--format", "json", ".")
    assert not SPARK.search(outcome.stdout)
    return {(f["code"], Path(f["path"]).name, f["line"]): f["evidence"] for f in outcome.json()["findings"]}


# -- text output: the sparkline ------------------------------------------------------------------


def _line_after(output: str, prefix: str) -> str:
    lines = output.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith(prefix)) + 1]


def test_a_schedule_that_never_decays_is_a_flat_full_line(text_run):
    output, _ = text_run
    line = _line_after(output, f"{ODD}/short_run.py:12:17: NN401 [confirmed]")
    assert line == "    LR stepped once per epoch over 20 epochs: " + "█" * 20 + " 1x -> 1x"  # one per epoch


def test_a_decay_over_decades_is_drawn_on_a_log_scale_and_says_so(text_run):
    output, _ = text_run
    line = _line_after(output, "vit_train.py:57:13: NN402 [confirmed]")
    assert line.startswith("    LR stepped every batch over 2000 batches: ")
    assert line.endswith(" 1x -> 1e-66x (log scale)")
    drawn = "".join(SPARK.findall(line))
    assert len(drawn) == 40 and drawn[0] == "█" and drawn[-1] == "▁"
    assert all(BLOCKS.index(a) >= BLOCKS.index(b) for a, b in zip(drawn, drawn[1:]))  # only ever falls


def test_a_cosine_faster_than_the_characters_averages_out_on_a_linear_scale(text_run):
    output, _ = text_run
    line = _line_after(output, "cosine_per_batch.py:23:9: NN402 [confirmed]")
    assert line.startswith("    LR stepped every batch over 3000 batches: ") and "log scale" not in line
    assert set(SPARK.findall(line)) <= set("▃▄▅")  # 50 swings from 1x to 0: about half, everywhere


def test_only_findings_with_a_curve_get_a_sparkline(text_run):
    output, _ = text_run
    findings = [line for line in output.splitlines() if re.match(r"\S+:\d+:\d+: NN\d+", line)]
    curves = [line for line in output.splitlines() if line.startswith("    LR ")]
    assert len(curves) == sum(" NN401 " in f or " NN402 " in f for f in findings) == 4
    assert {f.split(": ")[1].split()[0] for f in findings} >= {"NN102", "NN103", "NN401", "NN402"}
    assert len(SPARK.findall(output)) == sum(len(SPARK.findall(line)) for line in curves)


def test_machine_formats_have_no_sparkline_and_a_second_report_replaces_the_first(project, tmp_path):
    # JSON: checked in the `evidence` fixture. GitHub annotations, then SARIF, of the same finding, each
    # run writing its report to the same directory: the second replaces the page the first wrote.
    for output_format in ("github", "sarif"):
        outcome = _in(project, "--confirm", "--format", output_format, "--report", str(tmp_path), f"{ODD}/short_run.py")
        assert outcome.exit_code == 1 and "NN401" in outcome.stdout and "stays at its initial value" in outcome.stdout
        assert not SPARK.search(outcome.stdout), output_format
    assert [path.name for path in tmp_path.iterdir()] == ["index.html"]
    assert len(_page(tmp_path / "index.html").findall(".//section//img")) == 1


def test_an_output_without_block_characters_gets_an_ascii_sparkline(project):
    # A Windows console or a file redirected there is cp1252: no block characters, and no crash either.
    command = [sys.executable, "-m", "nnlint", "--confirm", f"{ODD}/short_run.py"]
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, timeout=300)
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    assert b"\n    LR stepped once per epoch over 20 epochs: " + b"#" * 20 + b" 1x -> 1x\n" in done.stdout


def test_sparkline_scales():
    imagenet = {"label": "stepped once per epoch", "unit": "epoch", "points": [[0, 1.0], [30, 0.1], [60, 0.01]], "end": 90}
    drawn = sparkline(imagenet)
    assert len(drawn) == 40 and drawn.startswith("█" * 13) and drawn.endswith("▁" * 13) and "▄" in drawn
    assert lr_line(imagenet).endswith(" 1x -> 0.01x (log scale)")
    gentle = {"label": "stepped every batch", "unit": "batch", "points": [[0, 1.0], [50, 0.5]], "end": 100}
    assert sparkline(gentle) == "█" * 20 + "▄" * 20  # linear from 0: half the LR is half the height
    assert "log scale" not in lr_line(gentle)
    assert sparkline({"label": "", "unit": "epoch", "points": [[0, 0.0]], "end": 3}) == "▁▁▁"


# -- JSON evidence: the curves and the maps ---------------------------------------------------------


def test_schedule_evidence_carries_the_simulated_curves(evidence):
    short = evidence["NN401", "short_run.py", 12]
    assert short["lr_curves"] == [
        {"label": "stepped once per epoch", "unit": "epoch", "points": [[0, 1.0], [19, 1.0]], "end": 20}
    ]
    assert short["lr"]["end"] == [19, 1.0]  # the fields that were there stay
    per_batch, per_epoch = evidence["NN402", "vit_train.py", 57]["lr_curves"]
    assert per_batch["label"] == "stepped every batch" and per_batch["end"] == 2000
    assert per_batch["points"][:3] == [[0, 1.0], [30, 0.1], [60, 0.01]]  # every decay of a step schedule
    assert per_epoch == {"label": "stepped once per epoch", "unit": "batch", "points": [[0, 1.0], [1999, 1.0]], "end": 2000}
    cosine = evidence["NN402", "cosine_per_batch.py", 23]["lr_curves"][0]
    lrs = [lr for _, lr in cosine["points"]]
    assert len(lrs) <= 242 and min(lrs) == 0.0 and max(lrs) == 1.0  # compact, and every swing kept whole


def test_batch_mixing_evidence_carries_the_sample_by_sample_map(evidence):
    anchored = evidence["NN102", "mixing.py", 14]
    grid = anchored["gradient_map"]
    assert (grid["kind"], grid["rows"], grid["columns"], grid["block"]) == ("samples", "output sample", "input sample", 1)
    values = grid["values"]
    assert len(values) == 5 and all(len(row) == 5 for row in values)
    # Sample 0 leaks into every output and nothing else leaks: read off the 4 grouped passes, the map is
    # exactly the diagonal and column 0.
    assert all((value > 0) == (i == j or j == 0) for i, row in enumerate(values) for j, value in enumerate(row))
    assert grid["exact_rows"] == [anchored["output"]] and anchored["leaking_input"] == 0
    assert values[anchored["output"]][0] == pytest.approx(anchored["max_gradient"], rel=1e-2)
    assert anchored["backward_passes"] == 5 and grid["grouped_passes"] == 4  # the map costs no pass
    softmax = evidence["NN102", "mixing.py", 26]["gradient_map"]["values"]
    assert all(value > 0 for row in softmax for value in row)  # a softmax over the batch: everyone on everyone


def test_causal_leak_evidence_carries_the_step_by_step_map(evidence):
    leaky = evidence["NN103", "decoder.py", 18]["gradient_map"]
    assert (leaky["kind"], leaky["first_hidden"]) == ("steps", 1)
    assert len(leaky["values"]) == 36 and {len(row) for row in leaky["values"]} == {37}
    assert all(value > 0 for row in leaky["values"] for value in row)  # no mask: every step sees every step
    strict = evidence["NN103", "wavenet.py", 24]["gradient_map"]
    assert strict["first_hidden"] == 0
    rows = strict["values"]
    assert all(rows[m][m] > 0 for m in range(len(rows[0])))  # each output sees its own step: the leak
    assert all(value == 0 for m, row in enumerate(rows) for value in row[m + 1 :])  # and no later step


# -- the page ---------------------------------------------------------------------------------------


def _page(path: Path):
    """The page as html5lib's strict parser reads it: any parse error raises."""
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(path.read_bytes())


def _png(img) -> object:
    source = img.get("src")
    assert source.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
    picture.load()
    return picture.convert("RGB")


def _colours(picture) -> dict[tuple[int, int, int], int]:
    return {colour: count for count, colour in picture.getcolors(maxcolors=1 << 24)}


def _count(picture, colour) -> int:
    return _colours(picture).get(colour, 0)


def test_the_page_is_valid_static_html_with_a_picture_per_finding(text_run):
    _, page = text_run
    assert [p.name for p in page.parent.iterdir()] == ["index.html"]  # pictures inline: one file
    document = _page(page)
    assert document.find("head/meta[@name='generator']").get("content").startswith("nnlint ")
    assert document.find(".//script") is None and document.find(".//link") is None
    assert all(a.get("href").startswith("#") for a in document.iter("a"))
    sections = document.findall(".//section")
    titles = ["".join(section.find("h2").itertext()) for section in sections]
    assert sorted(title.split()[1] for title in titles) == ["NN102", "NN102", "NN103", "NN103", "NN401", "NN401", "NN402", "NN402"]
    # The odd directory name came through as text: escaped, not markup.
    assert f"{ODD}/short_run.py:12:17 NN401 imagenet-lr-schedule [confirmed]" in titles
    assert document.find(".//i") is None
    for section, title in zip(sections, titles):
        [figure] = section.findall("figure")
        img = figure.find("img")
        picture = _png(img)
        assert picture.size == (int(img.get("width")), int(img.get("height")))
        assert len(img.get("alt")) > 40 and len("".join(figure.find("figcaption").itertext())) > 80
        assert len(_colours(picture)) > 50  # drawn, not blank
        if " NN40" in title:
            assert _count(picture, C0_BLUE) > 200, title  # stepped once per epoch: in every LR picture
            if " NN402 " in title:
                assert _count(picture, C1_ORANGE) > 200, title  # stepped every batch, as the code does
        else:
            assert _count(picture, RED) > 10, title  # the box around the pair the finding names
    table = document.findall(".//table//tr")
    assert len(table) == 1 + len(re.findall(r"(?m)^\S+:\d+:\d+: NN\d+", text_run[0]))  # every finding listed


def test_the_report_says_how_each_map_was_measured(text_run):
    _, page = text_run
    captions = ["".join(f.itertext()) for f in _page(page).iter("figcaption")]
    assert sum("read off the 4 grouped backward passes" in caption for caption in captions) == 2
    assert sum("no output may see later steps" in caption for caption in captions) == 1
    assert sum("no output may see its own step's input" in caption for caption in captions) == 1
    assert sum("assumes 100 batches per epoch" in caption for caption in captions) == 3  # 2 NN402, vit's NN401


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless browser here: apt-get install chromium")
def test_headless_chromium_shows_the_page_and_its_pictures(text_run, tmp_path):
    _, page = text_run
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1"]
    url = page.resolve().as_uri()
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    loaded = html5lib.HTMLParser(namespaceHTMLElements=False).parse(dom)
    assert len(loaded.findall(".//section//img")) == 8
    assert loaded.find(".//title").text.startswith("nnlint report: ")
    shot = tmp_path / "shot.png"
    height = 900 * 8 + 2000
    subprocess.run([*browser, f"--window-size=1100,{height}", f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    screen = Image.open(shot).convert("RGB")
    assert screen.size == (1100, height)
    # The browser decoded and drew every picture: the curves' blue and orange, the maps' red boxes (the
    # page's own text and borders use none of these colours; a broken image shows only its alt text).
    assert _count(screen, C0_BLUE) > 4 * 200 and _count(screen, C1_ORANGE) > 200 and _count(screen, RED) > 4 * 10


# -- errors -------------------------------------------------------------------------------------------


def test_report_without_confirm_is_an_error_that_writes_nothing(project, tmp_path):
    outcome = _in(project, "--report", str(tmp_path / "out"), f"{ODD}/short_run.py")
    assert outcome.exit_code == 2
    assert outcome.stderr == "nnlint: error: --report draws what the confirm pass measures: add --confirm\n"
    assert not (tmp_path / "out").exists()


def test_a_page_of_the_users_is_never_overwritten(project, tmp_path):
    theirs = tmp_path / "index.html"
    theirs.write_text("<p>my notes</p>")
    outcome = _in(project, "--confirm", "--report", str(tmp_path), f"{ODD}/short_run.py")
    assert outcome.exit_code == 2 and outcome.stdout == ""
    assert "exists and nnlint did not write it; name another directory" in outcome.stderr
    assert theirs.read_text() == "<p>my notes</p>"
    afile = tmp_path / "afile"
    afile.write_text("x")
    for target in (afile, afile / "sub"):
        outcome = _in(project, "--confirm", "--report", str(target), f"{ODD}/short_run.py")
        assert outcome.exit_code == 2 and outcome.stderr.startswith(f"nnlint: error: --report {target}: "), outcome.stderr


def test_without_matplotlib_report_says_which_extra_to_install(project, tmp_path):
    # The real CLI in a process where matplotlib cannot be imported, as in an install without the extra.
    blocked = "import sys; sys.modules['matplotlib'] = None; from nnlint.cli import main; main()"
    command = [sys.executable, "-c", blocked, "--confirm", "--report", str(tmp_path / "out"), f"{ODD}/short_run.py"]
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr == "nnlint: error: --report draws its pictures with matplotlib: pip install 'nnlint[report]'\n"
    assert not (tmp_path / "out").exists()


def test_the_static_pass_is_unchanged_without_evidence(project):
    outcome = _in(project, f"{ODD}/short_run.py")
    assert outcome.exit_code == 1 and "NN401" in outcome.stdout and not SPARK.search(outcome.stdout)

