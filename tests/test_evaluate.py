"""bench evaluate end to end on a tiny run trained by `bench train`: the report card parses, every picture it
shows exists, every number equals the mean of the CSV rows it names, nothing comes from the network; a second
evaluate computes nothing; Ctrl-C keeps finished runs; a D alone gets a card with the G tasks noted; bad input
is one line and exit 2; the leaderboard; and (opt-in) the page rendered by headless Chromium."""
import json
import math
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.report.markdown import _fmt
from bench.tasks.base import TASKS
from fixtures_fid import write_tiny_weights

TRAIN = ["train", "--dataset", "synthetic", "--subset", "64", "--image-size", "32", "--ngf", "8", "--ndf", "8",
         "--batch-size", "32", "--device", "cpu", "--epochs", "2"]
PROBE = 'labels_per_class = 5, val_size = 60, selection_draws = 2, c_grid = [1e-3, 1e-2]'
SUITE = f"""
description = "tests: a few seconds a task"
[[task]]
name = "svm"
label = "5 labels a class"
params = {{ {PROBE}, draws = 3 }}
[[task]]
name = "svm"
label = "per layer"
per_layer = "max4"
params = {{ {PROBE}, draws = 2, baselines = ["random-d"] }}
[[task]]
name = "svm"
label = "per epoch"
per_epoch = true
params = {{ {PROBE}, draws = 3, baselines = [] }}
[[task]]
name = "fid"
params = {{ samples = 40, metrics = ["fid", "prc"], extractor = "tiny", inception_weights = "{{weights}}" }}
[[task]]
name = "memorisation"
params = {{ samples = 30, neighbours = 2, show = 2 }}
[[task]]
name = "latent-walk"
params = {{ walks = 2, points = 3, steps = 2 }}
[[task]]
name = "guided-backprop"
params = {{ images = 40, features = 2, top = 2 }}
"""


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A 2-epoch run on the synthetic shapes, evaluated with the test suite: (root, run, results, output)."""
    root = tmp_path_factory.mktemp("evaluate")
    run = root / "runs" / "tiny"
    assert _bench(*TRAIN, "--out", run).exit_code == 0
    suite = root / "suite.toml"
    suite.write_text(SUITE.replace("{weights}", str(write_tiny_weights(root / "tiny.pt"))))
    r = _bench("evaluate", run, "--suite", suite, "--results", root / "results", "--device", "cpu")
    assert r.exit_code == 0, r.output
    return root, run, root / "results", r.output


class Page(HTMLParser):
    """Everything a test checks in a page: titles, headings, links, images, and the cells that name their rows."""

    def __init__(self, path: Path):
        super().__init__()
        self.title, self.headings, self.refs, self.cells, self.scripts = "", [], [], [], []
        self._in, self._cell = None, None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.refs += [(tag, k, v) for k, v in attrs.items() if k in ("src", "href")]
        if tag in ("title", "h2"):
            self._in = tag
        if tag == "td" and "data-csv" in attrs:
            self._cell = {**attrs, "text": ""}
        if tag == "script":
            self.scripts.append(attrs)

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "h2":
            self.headings.append(data)
        if self._cell is not None:
            self._cell["text"] += data


def check_page(page: Path, results: Path) -> Page:
    """The page parses, its pictures exist, nothing is fetched, and each number is its rows' mean (± std)."""
    p = Page(page)
    for tag, attr, value in p.refs:
        assert not value.startswith(("http:", "https:", "//")), (tag, attr, value)
        if attr == "src" or not value.startswith("#"):
            assert (page.parent / value).is_file(), value
    assert all("src" not in s for s in p.scripts)  # inline scripts only
    tables = {}
    for cell in p.cells:
        table = tables.setdefault(cell["data-csv"], pd.read_csv(results / cell["data-csv"], dtype=str,
                                                                keep_default_na=False))
        rows = table[table.run_id == cell["data-run"]]
        for column, value in json.loads(cell["data-where"]).items():
            rows = rows[rows[column] == str(value)]
        values = [float(v) for v in rows.value]
        assert len(values) == int(cell["data-n"]) > 0, cell
        mean, metric = statistics.fmean(values), json.loads(cell["data-where"])["metric"]
        assert math.isclose(float(cell["data-value"]), mean, rel_tol=1e-12, abs_tol=1e-15), cell
        shown = _fmt(mean, metric) + (f" ± {_fmt(statistics.stdev(values), metric)}" if len(values) > 1 else "")
        assert cell["text"] == shown, (cell, shown)
    return p


def test_the_card_shows_every_section_and_each_number_is_its_rows_mean(evaluated):
    root, run, results, output = evaluated
    page = results / "report" / "tiny" / "index.html"
    assert f"report card: {page}" in output
    p = check_page(page, results)
    assert p.title == "Report card: tiny"
    assert p.headings == ["The model", "Training", "Representation", "Generation", "Learning, not memorising",
                          "The runs behind this page"]
    csvs = {c["data-csv"] for c in p.cells}
    assert csvs == {"svm.csv", "fid.csv", "memorisation.csv", "latent-walk.csv", "guided-backprop.csv"}
    # the probe per D layer: trained and random D for each of the 32 px D's three layers
    layers = [c for c in p.cells if json.loads(c["data-where"]).get("model") == "random-d"]
    assert len(layers) >= 4
    images = [v for t, a, v in p.refs if a == "src"]
    # the probe of each epoch's D: its rows read that epoch's export, and the card shows both epochs' numbers
    svm = pd.read_csv(results / "svm.csv")
    per_epoch = svm[svm.ckpt.str.contains("epoch00")]
    assert sorted(per_epoch.ckpt.unique()) == [str(run / "ckpt" / "epoch001_d.pt"), str(run / "ckpt" / "epoch002_d.pt")]
    assert set(per_epoch.model) == {"trained-d"}
    epoch_runs = set(per_epoch.run_id)
    assert len(epoch_runs) == 2 and epoch_runs <= {c["data-run"] for c in p.cells}
    for expected in ("training-plot.png", "probe-layers-plot.png", "probe-epochs-plot.png", "samples-epoch002.png",
                     "vs-step.png",
                     "neighbours-d.png", "linear.png", "maps.png"):
        assert any(src.endswith(expected) for src in images), expected
    fid = pd.read_csv(results / "fid.csv")
    assert fid.ckpt.nunique() == 2  # both epochs of the run's ckpt/ folder: FID against the step
    markdown = (page.parent / "report.md").read_text()
    for cell in p.cells:
        assert cell["text"] in markdown


def test_a_second_evaluate_computes_nothing_it_has(evaluated):
    root, run, results, _ = evaluated
    before = {p.name: p.read_bytes() for p in results.glob("*.csv")}
    r = _bench("evaluate", run, "--suite", root / "suite.toml", "--results", results, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "to do" in r.output and ", 0 to do" in r.output.splitlines()[0]
    assert "running" not in r.output and "estimate" not in r.output
    assert {p.name: p.read_bytes() for p in results.glob("*.csv")} == before


def test_ctrl_c_keeps_the_finished_runs_and_a_rerun_does_the_rest(evaluated, tmp_path, monkeypatch):
    import bench.evaluate as ev
    from bench.subject import from_run
    from bench.suite import load_suite, select

    root, run, _, _ = evaluated
    suite = select(load_suite(root / "suite.toml"), only=("svm", "latent-walk"))
    calls, real = [], ev.execute

    def interrupted_third(planned):
        calls.append(planned.task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(planned)

    monkeypatch.setattr(ev, "execute", interrupted_third)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        ev.evaluate(from_run(run), suite, results_dir=tmp_path, device="cpu", echo=lines.append)
    assert "interrupted: 2 of 7 runs" in lines[-1]  # svm: all layers, 3 single layers, 2 epochs; latent-walk
    assert pd.read_csv(tmp_path / "svm.csv").run_id.nunique() == 2
    monkeypatch.setattr(ev, "execute", real)
    lines = []
    page, steps = ev.evaluate(from_run(run), suite, results_dir=tmp_path, device="cpu", echo=lines.append)
    assert [s.status for s in steps] == ["done", "done", "ran", "ran", "ran", "ran", "ran"]
    assert pd.read_csv(tmp_path / "svm.csv").run_id.nunique() == 6 and page.is_file()


def test_a_discriminator_alone_gets_a_card_with_the_generator_tasks_noted(evaluated, tmp_path):
    root, run, _, _ = evaluated
    r = _bench("evaluate", "--d", run / "d.pt", "--dataset", "synthetic", "--suite", root / "suite.toml",
               "--results", tmp_path, "--device", "cpu", "--only", "svm", "--only", "latent-walk",
               "--only", "memorisation")
    assert r.exit_code == 0, r.output
    page = tmp_path / "report" / "tiny-d" / "index.html"
    p = check_page(page, tmp_path)
    assert {c["data-csv"] for c in p.cells} == {"svm.csv"}
    text = page.read_text()
    # latent-walk and memorisation, each in its section and in the table of runs
    assert text.count("needs a generator checkpoint; none was given") == 4
    assert "No training log" in text


@pytest.mark.parametrize("args,expected", [
    (["evaluate", "{tmp}/empty"], "holds no g.pt or d.pt"),
    (["evaluate", "{tmp}/missing"], "does not exist"),
    (["evaluate", "{run}", "--budget", "huge"], "unknown budget 'huge'; expected one of smoke, standard, paper"),
    (["evaluate", "{run}", "--only", "fidd"], "unknown task 'fidd' (did you mean 'fid'?)"),
    (["evaluate", "{run}", "--only", "forget"], "task 'forget' is not in suite standard"),
    (["evaluate", "{run}", "--g", "{run}/g.pt"], "give a run folder or --g/--d checkpoints, not both"),
    (["evaluate"], "needs a run folder, or --g and/or --d checkpoints"),
    (["evaluate", "--g", "{run}/d.pt"], "holds a discriminator, expected a generator"),
])
def test_bad_input_is_one_line_exit_2(evaluated, tmp_path, args, expected):
    (tmp_path / "empty").mkdir()
    run = evaluated[1]
    r = _bench(*[a.format(tmp=tmp_path, run=run) for a in args], "--results", tmp_path / "results")
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "results").exists()


def test_a_suite_file_with_a_typo_fails_before_any_work(evaluated, tmp_path):
    run = evaluated[1]
    suite = tmp_path / "s.toml"
    suite.write_text('[[task]]\nname = "svm"\nparams = { labels_per_klass = 5 }\n')
    r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results")
    assert r.exit_code == 2 and "has no parameter 'labels_per_klass' (did you mean 'labels_per_class'?)" in r.output
    suite.write_text('[[task]]\nname = "svm"\nlayers = 3\n')
    r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results")
    assert r.exit_code == 2 and "unknown key(s) layers" in r.output
    for body, expected in (('name = "svm"\nper_epoch = "yes"', "per_epoch='yes': expected true, false or a number"),
                           ('name = "svm"\nper_epoch = 0', "per_epoch=0: expected true, false or a number"),
                           ('name = "fid"\nper_epoch = true', "per_epoch is for tasks of a discriminator's features"),
                           ('name = "svm"\nper_epoch = true\nper_layer = "max4"', "per_layer and per_epoch together")):
        suite.write_text(f"[[task]]\n{body}\n")
        r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results")
        assert r.exit_code == 2 and expected in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_per_epoch_n_plans_that_many_epochs_evenly_spaced_the_last_among_them(evaluated, tmp_path):
    from bench.evaluate import plan_steps
    from bench.subject import from_run
    from bench.suite import load_suite

    run = evaluated[1]
    suite = tmp_path / "s.toml"
    for n, epochs in ((1, [2]), (2, [1, 2]), (5, [1, 2]), (True, [1, 2])):
        suite.write_text(f'[[task]]\nname = "svm"\nper_epoch = {str(n).lower()}\nparams = {{ {PROBE} }}\n')
        steps = plan_steps(from_run(run), load_suite(suite), tmp_path / "results", device="cpu")
        assert [s.epoch for s in steps] == epochs, n
        assert [s.planned.ctx.ckpt.name for s in steps] == [f"epoch{e:03d}_d.pt" for e in epochs]


def test_per_epoch_probes_of_checkpoints_without_a_run_folder_are_noted_not_run(evaluated, tmp_path):
    root, run, _, _ = evaluated
    suite = tmp_path / "s.toml"
    suite.write_text(f'[[task]]\nname = "svm"\nper_epoch = true\nparams = {{ {PROBE} }}\n')
    r = _bench("evaluate", "--d", run / "d.pt", "--dataset", "synthetic", "--suite", suite, "--results",
               tmp_path / "results", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "needs a training run's per-epoch exports" in r.output
    assert not (tmp_path / "results" / "svm.csv").exists()


def test_the_shipped_budgets_load_and_leave_out_tasks_that_need_the_users_input():
    from bench.suite import BUDGETS, budget_path, load_suite

    for budget in BUDGETS:
        suite = load_suite(budget_path(budget), budget)
        names = {e.name for e in suite.entries}
        assert {"svm", "fid", "memorisation", "latent-walk", "guided-backprop", "class-grid", "cas",
                "intra-fid"} <= names
        assert not [n for n in names if TASKS.get(n).user_input], budget
    assert [n for n, t in TASKS.items() if t.user_input] == ["forget", "vector-arithmetic"]


def test_the_suites_the_write_ups_give_load():
    """A write-up's command names a suite file beside it: a key renamed since must fail here, not for a reader."""
    from bench.suite import load_suite

    files = sorted((Path(__file__).parents[1] / "docs" / "experiments").rglob("*.toml"))
    assert len(files) >= 2
    for path in files:
        assert load_suite(path, path.stem).entries, path


def test_the_leaderboard_has_a_line_per_checkpoint_and_links_the_card(evaluated):
    root, run, results, _ = evaluated
    r = _bench("report", "--results", results, "--html")
    assert r.exit_code == 0, r.output
    page = results / "report" / "index.html"
    p = check_page(page, results)
    assert p.title == "Leaderboard" and 'class="sortable"' in page.read_text()
    links = [v for t, a, v in p.refs if a == "href" and not v.startswith("#")]
    assert "tiny/index.html" in links
    text = page.read_text()
    for line in (f"{run}/{{g,d}}.pt", f"{run}/ckpt/epoch001_{{g,d}}.pt", f"{run}/ckpt/epoch002_{{g,d}}.pt"):
        assert f">{line}<" in text, line
    assert "svm accuracy (labels_per_class=5)" in text and "<th>fid</th>" in text


CLASS_SUITE = """
description = "tests: a conditional generator's classes"
[[task]]
name = "class-grid"
params = { columns = 3 }
[[task]]
name = "cas"
params = { per_class = 5, epochs = 2, width = 8 }
[[task]]
name = "intra-fid"
params = { per_class = 4, extractor = "tiny", inception_weights = "{weights}" }
"""


def test_the_class_tasks_are_skipped_with_a_note_for_an_unconditional_run(evaluated, tmp_path):
    root, run, _, _ = evaluated
    suite = tmp_path / "classes.toml"
    suite.write_text(CLASS_SUITE.replace("{weights}", str(write_tiny_weights(tmp_path / "tiny.pt"))))
    r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert r.output.count("skipped: ") == 3 and "is an unconditional generator" in r.output
    text = (tmp_path / "results" / "report" / "tiny" / "index.html").read_text()
    assert text.count("is an unconditional generator") == 6  # each task: in the Classes section and the runs table
    assert not list((tmp_path / "results").glob("*.csv"))


def test_a_conditional_run_gets_the_classes_section_each_number_its_rows_mean(tmp_path):
    run = tmp_path / "runs" / "cgan"
    r = _bench(*TRAIN, "--model", "cdcgan", "--out", run)
    assert r.exit_code == 0, r.output
    suite = tmp_path / "classes.toml"
    suite.write_text(CLASS_SUITE.replace("{weights}", str(write_tiny_weights(tmp_path / "tiny.pt"))))
    results = tmp_path / "results"
    r = _bench("evaluate", run, "--suite", suite, "--results", results, "--device", "cpu")
    assert r.exit_code == 0, r.output
    p = check_page(results / "report" / "cgan" / "index.html", results)
    assert "Classes" in p.headings
    assert {c["data-csv"] for c in p.cells} == {"class-grid.csv", "cas.csv", "intra-fid.csv"}
    shown = {json.loads(c["data-where"])["metric"] for c in p.cells}
    assert {"class_share", "accuracy", "accuracy_class_9", "fid", "intra_fid", "fid_class_9"} <= shown
    assert any(v.endswith("grid.png") for t, a, v in p.refs if a == "src")
    models = {json.loads(c["data-where"]).get("model") for c in p.cells if c["data-csv"] == "cas.csv"}
    assert models == {"generator", "real"}


@pytest.mark.browser
def test_headless_chromium_renders_the_card(evaluated, tmp_path):
    """The page as a browser draws it: a screenshot that is not blank, and the DOM with the title and sections."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium: apt-get install -y chromium")
    page = evaluated[2] / "report" / "tiny" / "index.html"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'u'}"]
    shot = tmp_path / "card.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", page.resolve().as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        assert len(image.convert("L").getcolors(1 << 16)) > 50  # text, tables and pictures, not a blank page
    assert "<title>Report card: tiny</title>" in dom
    for heading in ("The model", "Training", "Representation", "Generation", "Learning, not memorising"):
        assert f"<h2>{heading}</h2>" in dom


def test_fid_measures_evenly_spaced_checkpoints_the_last_always():
    from bench.tasks.fid import spaced

    epochs = list(range(1, 81))
    assert spaced(epochs, 4) == [20, 40, 60, 80] and spaced(epochs, 1) == [80]
    assert spaced(epochs, None) == epochs and spaced([1, 2], 3) == [1, 2]


def test_without_inception_weights_the_fid_section_says_how_to_get_them(evaluated, tmp_path):
    root, run, _, _ = evaluated
    suite = tmp_path / "fid.toml"
    suite.write_text(f'[[task]]\nname = "fid"\nparams = {{ samples = 40, inception_weights = "{tmp_path / "none.pth"}" }}\n')
    r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results", "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "fid: skipped: Inception weights" in r.output and "failed" not in r.output
    text = (tmp_path / "results" / "report" / "tiny" / "index.html").read_text()
    assert "Inception weights" in text and "bench weights inception" in text


def test_the_estimate_prices_inception_by_its_timing_when_there_is_one(monkeypatch):
    """A timed Inception replaces the arithmetic price; without local weights nothing is timed (or downloaded)."""
    import torch

    from bench import evaluate
    from bench.tasks.base import Workload
    from dcgan import weights

    work = Workload(g_images=0, inception_images=1000)
    priced = evaluate.Speed(d=0.0, g=0.0, flops=1e11)
    timed = evaluate.Speed(d=0.0, g=0.0, flops=1e11, inception=0.05)
    assert priced.seconds(work) == pytest.approx(1000 * evaluate.INCEPTION_SLOWDOWN * 2 * evaluate.INCEPTION_MACS / 1e11)
    assert timed.seconds(work) == pytest.approx(50.0)
    assert "Inception 20 images/s" in timed.describe() and "priced by its arithmetic" in priced.describe()
    monkeypatch.setattr(weights, "local_weights", lambda: None)
    assert evaluate.time_inception(torch.device("cpu"), "fp32") is None
