"""The translation task: its accuracy, L1s and FID against independent computations with known translators (the
identity, a G that inverts the image), the attribute kind on a CelebA-format folder, the per-domain CSV, the
picture, provenance and the cached classifier, one-line errors; the probe on a StarGAN D; bench evaluate and
the report card on a tiny StarGAN run; the training plot's panels for every family's log."""
import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from scipy import linalg
from torch import nn

from bench.classifier import SmallCNN, predict
from bench.cli import main
from bench.features import to_uint8
from bench.pictures import log_panels, plot_training_log
from bench.results import RESULT_COLUMNS
from bench.run import execute, plan
from dcgan.checkpoint import fingerprint, load_net
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.models import family_of
from dcgan.models.srgan import SRGANConfig
from dcgan.models.stargan import StarGANConfig
from dcgan.models.stargan_nets import check_domain_labels
from fixtures_fid import TinyExtractor, write_tiny_weights
from fixtures_tasks import tiny_checkpoints
from test_evaluate import check_page

DOMAINS = ("disc", "square", "ring")
QUICK = {"epochs": "10", "width": "8", "batch_size": "16", "lr": "3e-3"}  # the classifier: a second on the shapes


def _cfg(**kw) -> StarGANConfig:
    return StarGANConfig(**{"image_size": 32, "nc": 3, "ngf": 8, "ndf": 8, "res_blocks": 1, "domains": DOMAINS,
                            "n_critic": 2, **kw})


class Known(nn.Module):
    """A translator whose output is known: the input unchanged (``sign`` 1) or inverted (-1), whatever the target."""

    num_classes = 0

    def __init__(self, cfg: StarGANConfig, sign: int):
        super().__init__()
        self.cfg, self.sign = cfg, sign

    def forward(self, x, *, labels=None):
        check_domain_labels(labels, len(x), len(self.cfg.domains), self.cfg.multi_label)
        return self.sign * x


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _run(tmp_path, sign: int | None = None, cfg: StarGANConfig | None = None, dataset: str = "synthetic",
         data_root=None, **overrides):
    """The task on a tiny StarGAN checkpoint of ``cfg``, its G replaced by ``Known(sign)`` unless None: (rows, ctx)."""
    cfg = cfg or _cfg()
    g, _ = tiny_checkpoints(tmp_path / "ckpt", config=cfg)
    planned = plan("translation", ckpt=g, dataset=dataset, data_root=data_root, device="cpu",
                   results_dir=tmp_path / "results", overrides={**QUICK, **overrides})
    if sign is not None:
        planned.ctx._nets["generator", planned.ctx.ckpt] = (Known(cfg, sign), cfg)
    result = execute(planned)
    return {(r["metric"], r["model"]): r for r in result.rows}, planned.ctx


def _classifier(rows, cfg: StarGANConfig) -> SmallCNN:
    """The run's domain classifier, read back from the cache file its rows name."""
    details = json.loads(rows["accuracy", "stargan"]["details"])
    net = SmallCNN(cfg.nc, len(cfg.domains), 8, cfg.multi_label)
    net.load_state_dict(torch.load(details["classifier"], weights_only=True))
    return net.eval()


def _details(row) -> dict:
    return json.loads(row["details"])


def _test_split(cfg: StarGANConfig, dataset="synthetic", root=None):
    return load_dataset(dataset, "test", root=root, image_size=cfg.image_size, channels=cfg.nc,
                        **family_of(cfg).data_options(cfg))


# ---- the numbers, against independent computations ---------------------------------------------------

def test_an_identity_gs_accuracy_is_the_classifiers_on_the_inputs_labelled_with_the_target(tmp_path):
    rows, _ = _run(tmp_path, sign=1)
    cfg = _cfg()
    test = _test_split(cfg)
    predicted = predict(_classifier(rows, cfg), test.images, torch.device("cpu"))
    y = test.labels
    # every (input, other domain) pair: the input relabelled with the target, scored by the classifier
    pairs = [(int(predicted[i]), c) for i in range(len(y)) for c in range(3) if c != int(y[i])]
    expected = sum(p == c for p, c in pairs) / len(pairs)
    for model in ("stargan", "identity"):
        assert float(rows["accuracy", model]["value"]) == pytest.approx(expected, abs=1e-12)
        per = _details(rows["accuracy", model])["per_domain"]
        for c, name in enumerate(DOMAINS):
            assert per[name] == pytest.approx(float((predicted[y != c] == c).double().mean()), abs=1e-12)
    assert float(rows["accuracy", "real"]["value"]) == pytest.approx(float((predicted == y).double().mean()))
    assert float(rows["accuracy", "real"]["value"]) > 0.8  # the shapes are easy: a classifier worth the name
    assert _details(rows["accuracy", "stargan"])["pairs"] == len(pairs) == 2 * len(y)
    for metric in ("reconstruction_l1", "own_domain_l1"):
        assert float(rows[metric, "stargan"]["value"]) == 0.0 == float(rows[metric, "identity"]["value"])


def test_an_inverting_g_changes_each_image_by_twice_its_mean_magnitude_and_comes_back_exactly(tmp_path):
    rows, ctx = _run(tmp_path, sign=-1)
    cfg = _cfg()
    test = _test_split(cfg)
    unit = test.images.double() / 127.5 - 1
    assert float(rows["own_domain_l1", "stargan"]["value"]) == pytest.approx(float((2 * unit.abs()).mean()), rel=1e-6)
    assert float(rows["reconstruction_l1", "stargan"]["value"]) == 0.0  # -(-x) is x
    own = _details(rows["own_domain_l1", "stargan"])["per_domain"]
    for c, name in enumerate(DOMAINS):
        assert own[name] == pytest.approx(float((2 * unit[test.labels == c].abs()).mean()), rel=1e-6)
    # the translations the classifier saw: the inverted inputs rounded to 8 bits, as saved images are
    inverted = to_uint8(-(test.images.float() / 127.5 - 1))
    predicted = predict(_classifier(rows, cfg), inverted, torch.device("cpu"))
    right = [int(predicted[i]) == c for i in range(len(predicted)) for c in range(3) if c != int(test.labels[i])]
    assert float(rows["accuracy", "stargan"]["value"]) == pytest.approx(sum(right) / len(right), abs=1e-12)
    # per_domain.csv holds every row's per-domain values, with the counts behind them
    with open(ctx.artifacts / "per_domain.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["domain", "method", "metric", "value", "n"]
    for line in table:
        details = _details(rows[line["metric"], line["method"]])
        assert float(line["value"]) == pytest.approx(details["per_domain"][line["domain"]], rel=1e-5)
        assert int(line["n"]) == details["n_per_domain"][line["domain"]]
    counts = {line["domain"]: int(line["n"]) for line in table if line["metric"] == "accuracy"
              and line["method"] == "stargan"}
    assert counts == {name: int((test.labels != c).sum()) for c, name in enumerate(DOMAINS)}
    assert {(line["metric"], line["method"]) for line in table} == {
        ("accuracy", "stargan"), ("accuracy", "identity"), ("accuracy", "real"), ("reconstruction_l1", "stargan"),
        ("own_domain_l1", "stargan")}


def _fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID by its formula (Heusel et al. 2017), scipy's sqrtm."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_fid_per_domain_is_the_inputs_from_outside_it_against_its_train_images_when_there_are_enough(tmp_path):
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    fid = {"extractor": "tiny", "inception_weights": str(weights)}
    rows, _ = _run(tmp_path / "few", sign=1, **fid)
    assert not any(metric == "fid" for metric, _ in rows)
    assert "fewer than fid_min_images=500" in _details(rows["accuracy", "stargan"])["fid"]
    rows, _ = _run(tmp_path / "enough", sign=1, fid_min_images="20", **fid)
    net = TinyExtractor("tiny", ["16"], feature_extractor_weights_path=str(weights))
    cfg = _cfg()
    test = _test_split(cfg)
    train = load_dataset("synthetic", "train", image_size=32, channels=3, classes=DOMAINS)
    with torch.no_grad():
        inputs, real = net(test.images)[0].double().numpy(), net(train.images)[0].double().numpy()
    per = {model: _details(rows["fid", model])["per_domain"] for model in ("stargan", "identity")}
    for c, name in enumerate(DOMAINS):
        expected = _fid(inputs[(test.labels != c).numpy()], real[(train.labels == c).numpy()])
        assert per["identity"][name] == pytest.approx(expected, rel=1e-4)
        assert per["stargan"][name] == per["identity"][name]  # an identity G's translations are its inputs
    assert float(rows["fid", "stargan"]["value"]) == pytest.approx(sum(per["stargan"].values()) / 3)
    details = _details(rows["fid", "stargan"])
    assert details["reference"] == "train" and details["n_real_per_domain"] == {
        name: int((train.labels == c).sum()) for c, name in enumerate(DOMAINS)}
    assert "fid" not in _details(rows["accuracy", "stargan"])


# ---- attributes ---------------------------------------------------------------------------------------

ATTRS = ("Black_Hair", "Blond_Hair", "Male")


def _write_celeba(root, n: int = 60) -> None:
    """A CelebA folder in torchvision's layout (img_align_celeba/*.jpg, list_attr_celeba.txt,
    list_eval_partition.txt) whose first three attributes of interest show: each brightens its own colour
    channel in its own band of rows. Images 1..40 are train, 41..n test."""
    from fixtures_data import CELEBA_ATTRIBUTES

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, parts = [], []
    for i in range(n):
        values = {name: int(rng.integers(2)) for name in CELEBA_ATTRIBUTES}
        image = rng.integers(0, 60, (40, 32, 3)).astype(np.uint8)
        for k, name in enumerate(ATTRS):
            if values[name]:
                image[8 + 8 * k: 16 + 8 * k, :, k] = 230
        Image.fromarray(image).save(folder / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=95)
        lines.append(f"{i + 1:06d}.jpg " + " ".join(f"{2 * values[a] - 1:2d}" for a in CELEBA_ATTRIBUTES))
        parts.append(f"{i + 1:06d}.jpg {0 if i < 40 else 2}")
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(CELEBA_ATTRIBUTES)} \n" + "\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")


def test_attributes_are_flipped_one_at_a_time_and_the_flipped_one_is_scored(tmp_path):
    _write_celeba(tmp_path / "data")
    cfg = _cfg(domain_kind="attribute", domains=ATTRS)
    rows, ctx = _run(tmp_path, sign=1, cfg=cfg, dataset="celeba", data_root=tmp_path / "data", shown="2")
    test = _test_split(cfg, "celeba", tmp_path / "data")
    a = test.labels  # (N, 3) of 0/1
    predicted = predict(_classifier(rows, cfg), images := torch.stack([test[i][0] for i in range(len(test))]),
                        torch.device("cpu"))
    assert predicted.shape == a.shape
    # an identity G: attribute k flipped is scored right when the classifier reads the input's k as flipped
    assert float(rows["accuracy", "stargan"]["value"]) == pytest.approx(float((predicted == 1 - a).double().mean()))
    assert float(rows["accuracy", "real"]["value"]) == pytest.approx(float((predicted == a).double().mean()))
    assert float(rows["accuracy", "real"]["value"]) > 0.8
    per = _details(rows["accuracy", "real"])["per_domain"]
    assert per == pytest.approx({name: float((predicted[:, k] == a[:, k]).double().mean())
                                 for k, name in enumerate(ATTRS)})
    assert _details(rows["accuracy", "stargan"])["pairs"] == 3 * len(a)  # every attribute of every input flipped
    own = _details(rows["own_domain_l1", "stargan"])["n_per_domain"]  # images having each attribute
    assert own == {name: int(a[:, k].sum()) for k, name in enumerate(ATTRS)}
    picture = Image.open(ctx.artifacts / "translation.png")
    assert picture.size == (4 + 4 * 68, 4 + 6 * (64 + 12 + 4))  # the input and 3 flips, for 2 x 3 inputs
    assert len(images) == 20


# ---- the command line: files, provenance, the cache, errors -------------------------------------------

def test_bench_run_writes_rows_with_provenance_a_picture_and_reuses_its_classifier(tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", config=_cfg())
    args = ["run", "translation", "--ckpt", g, "--dataset", "synthetic", "--device", "cpu", "--results",
            tmp_path / "results", "--set", "epochs=2", "--set", "width=8", "--set", "shown=1"]
    r = _bench(*args)
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "results" / "translation.csv", keep_default_na=False)
    assert tuple(table.columns) == RESULT_COLUMNS and table.run_id.nunique() == 1
    assert (table.ckpt_sha256 == fingerprint(g)).all() and (table.dataset == "synthetic").all()
    assert set(zip(table.metric, table.model)) == {
        ("accuracy", "stargan"), ("accuracy", "identity"), ("accuracy", "real"), ("reconstruction_l1", "stargan"),
        ("reconstruction_l1", "identity"), ("own_domain_l1", "stargan"), ("own_domain_l1", "identity")}
    params = json.loads(table.params[0])
    assert params["split"] == "test" and params["precision"] == "fp32" and params["epochs"] == 2
    accuracy = table[(table.metric == "accuracy") & (table.model == "stargan")]
    assert json.loads(accuracy.details.iloc[0])["classifier_source"] == "trained"
    folder = tmp_path / "results" / "translation" / table.run_id[0]
    assert Image.open(folder / "translation.png").size == (4 + 4 * 68, 4 + 3 * 80)  # a row per domain
    assert _bench(*args).exit_code == 0
    again = pd.read_csv(tmp_path / "results" / "translation.csv", keep_default_na=False)
    assert len(again) == len(table)
    accuracy = again[(again.metric == "accuracy") & (again.model == "stargan")]
    assert json.loads(accuracy.details.iloc[0])["classifier_source"] == "cached"
    assert (again.value == table.value).all()  # the cached classifier is the one trained


@pytest.mark.parametrize("case, expected", [
    ("dcgan", "whose generator takes noise z"),
    ("unknown domain", "'sqaure'"),
    ("unknown attribute", "has no attribute 'Blnd_Hair'"),
    ("attributes of a data set of classes", "data set 'synthetic' has no attributes"),
    ("empty domain", "has no images in the test split of synthetic (--subset 2)"),
    ("train split", "--split train: the domain classifier and the FID's reference images are the train split's"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, case, expected):
    configs = {"dcgan": DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8),
               "unknown domain": _cfg(domains=("disc", "sqaure")),
               "unknown attribute": _cfg(domain_kind="attribute", domains=("Blnd_Hair", "Male")),
               "attributes of a data set of classes": _cfg(domain_kind="attribute", domains=DOMAINS)}
    g, _ = tiny_checkpoints(tmp_path / "ckpt", config=configs.get(case, _cfg()))
    args = ["run", "translation", "--ckpt", g, "--dataset", "synthetic", "--device", "cpu", "--results",
            tmp_path / "results"]
    if case == "unknown attribute":
        _write_celeba(tmp_path / "data", n=42)
        args[5:6] = ["celeba", "--data-root", tmp_path / "data"]
    args += {"empty domain": ["--subset", "2"], "train split": ["--split", "train"]}.get(case, [])
    r = _bench(*args)
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not list((tmp_path / "results").glob("**/*.*"))


# ---- the probe on a StarGAN D ------------------------------------------------------------------------------

def test_the_probe_reads_a_stargan_ds_trunk_as_any_discriminators_features(tmp_path):
    _, d = tiny_checkpoints(tmp_path / "ckpt", config=_cfg(), seed=2)
    args = ["run", "svm", "--ckpt", d, "--dataset", "synthetic", "--subset", "300", "--device", "cpu", "--results",
            tmp_path / "results", "--set", "c_grid=1e-3,1e-2", "--set", "val_size=60", "--set", "selection_draws=2"]
    r = _bench(*args)
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "results" / "svm.csv", keep_default_na=False)
    accuracy = rows[rows.metric == "accuracy"].set_index("model")
    assert sorted(accuracy.index) == ["random-d", "raw-pixels", "trained-d"]
    assert (accuracy.value > 0.3).all()  # ten shapes: chance is 0.1
    # the features: every trunk layer of D (conv1..conv4 at 32 px, 8 to 64 channels), max-pooled to 4x4
    from bench.features import FeatureCache, LayerSpec
    from bench.tasks.base import RunContext

    D = load_net(d, "discriminator")[0]
    assert D.layer_names == ("conv1", "conv2", "conv3", "conv4")
    ctx = RunContext(dataset="synthetic", ckpt=d, subset=40, cache=FeatureCache(tmp_path / "cache"))
    X = ctx.features("trained-d", "train", LayerSpec())
    images = load_dataset("synthetic", "train", image_size=32, channels=3, subset=40).images
    with torch.no_grad():
        acts = D.eval().forward_intermediates(images.float() / 127.5 - 1)
    expected = torch.cat([F.adaptive_max_pool2d(a, 4).flatten(1) for a in acts.values()], 1).numpy()
    assert X.shape == (40, 16 * (8 + 16 + 32 + 64))
    np.testing.assert_allclose(X, expected, rtol=1e-4, atol=1e-5)


# ---- bench evaluate and the report card ----------------------------------------------------------------------

def test_evaluate_measures_a_stargan_run_and_its_card_has_the_translation_section(tmp_path):
    run = tmp_path / "runs" / "star"
    r = _bench("train", "--model", "stargan", "--dataset", "synthetic", "--domains", ",".join(DOMAINS),
               "--image-size", "32", "--ngf", "8", "--ndf", "8", "--res-blocks", "1", "--n-critic", "2",
               "--epochs", "2", "--batch-size", "32", "--device", "cpu", "--out", run)
    assert r.exit_code == 0, r.output
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
[[task]]
name = "svm"
subset = 300
params = {{ c_grid = [1e-3, 1e-2], val_size = 60, selection_draws = 2 }}
[[task]]
name = "fid"
params = {{ samples = 40, extractor = "tiny", inception_weights = "{weights}" }}
[[task]]
name = "translation"
params = {{ epochs = 2, width = 8, fid_min_images = 20, extractor = "tiny", inception_weights = "{weights}" }}
""")
    results = tmp_path / "results"
    r = _bench("evaluate", run, "--suite", suite, "--results", results, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert "fid: skipped: " in r.output and "whose generator takes an image and a target domain" in r.output
    page = check_page(results / "report" / "star" / "index.html", results)
    assert "Translation" in page.headings and "Representation" in page.headings
    shown = {(c["data-csv"], json.loads(c["data-where"])["metric"], json.loads(c["data-where"]).get("model"))
             for c in page.cells}
    for metric, model in [("accuracy", "stargan"), ("accuracy", "identity"), ("accuracy", "real"),
                          ("fid", "stargan"), ("fid", "identity"), ("reconstruction_l1", "stargan"),
                          ("own_domain_l1", "stargan")]:
        assert ("translation.csv", metric, model) in shown
    images = [v for t, a, v in page.refs if a == "src"]
    assert any(src.endswith("translation.png") for src in images)
    assert any(src.endswith("training-plot.png") for src in images)
    markdown = (results / "report" / "star" / "report.md").read_text()
    assert "| disc |" in markdown and "Per target domain" in markdown


# ---- the training plot -------------------------------------------------------------------------------------

def test_the_training_plot_draws_the_columns_each_familys_log_has(tmp_path):
    star = _cfg()
    assert [(title, [c for c, _ in series]) for title, series in
            log_panels(["step", "epoch", *family_of(star).stats(star), "seconds"], family_of(star).log_panels(star))
            ] == [("D_src", ["d_real", "d_fake", "g_fake"]), ("domain classification", ["d_cls", "g_cls"]),
                  ("gradient penalty", ["d_gp"]), ("reconstruction", ["g_rec"])]
    dcgan = DCGANConfig()
    columns = ["step", "epoch", *family_of(dcgan).stats(dcgan), "seconds"]
    assert [t for t, _ in log_panels(columns, family_of(dcgan).log_panels(dcgan))] == ["losses", "D's outputs"]
    for stage, titles in (("srresnet", ["mse", "psnr"]), ("gan", ["losses", "D's outputs", "mse", "psnr"])):
        sr = SRGANConfig(image_size=32, hr_size=32, stage=stage)
        columns = ["step", "epoch", *family_of(sr).stats(sr), "seconds"]
        assert [t for t, _ in log_panels(columns, family_of(sr).log_panels(sr))] == titles
    log = tmp_path / "log.csv"  # a StarGAN log: G's numbers only every n_critic steps
    with open(log, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["step", "epoch", *family_of(star).stats(star), "seconds"])
        for step in range(1, 7):
            g = [0.5, 0.4, 0.3] if step % 2 == 0 else ["nan"] * 3
            out.writerow([step, 1, -1.0, 0.5, 1.1, 0.2, *g, 0.01])
    plot_training_log(log, tmp_path / "plot.png", panels=family_of(star).log_panels(star))
    assert Image.open(tmp_path / "plot.png").size == (1100, 680)  # four panels, two to a row


# ---- bench sample with a StarGAN G ---------------------------------------------------------------------------

def _photo(path, size, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return path


def test_sample_translates_images_into_a_domain_under_their_names_or_into_every_domain_as_a_grid(tmp_path):
    from dcgan.data.pixels import resize_crop
    from dcgan.models.stargan import translate

    g, _ = tiny_checkpoints(tmp_path / "ckpt", config=_cfg(), seed=1)
    inputs = [_photo(tmp_path / "in" / "a.png", (40, 32), 1), _photo(tmp_path / "in" / "sub" / "b.jpg", (32, 32), 2)]
    r = _bench("sample", "--ckpt", g, "--input", tmp_path / "in", "--domain", "ring", "--out", tmp_path / "out",
               "--device", "cpu")
    assert r.exit_code == 0 and "wrote 2 image(s) translated into ring into" in r.output, r.output
    G = load_net(g, "generator", takes="image")[0]
    x = []
    for path in inputs:  # read as a file data set's images are: PIL's resize of the short side, then the centre
        with Image.open(path) as image:
            x.append(torch.from_numpy(np.array(resize_crop(image.convert("RGB"), 32))).permute(2, 0, 1))
    expected = to_uint8(translate(G, torch.stack(x), torch.tensor([2, 2]), batch_size=64, device="cpu"))
    for image, written in zip(expected, ("a.png", "sub/b.png")):
        got = torch.from_numpy(np.array(Image.open(tmp_path / "out" / written))).permute(2, 0, 1)
        assert torch.equal(got, image), written
    r = _bench("sample", "--ckpt", g, "--input", tmp_path / "in", "--out", tmp_path / "grid.png", "--device", "cpu")
    assert r.exit_code == 0 and "2 image(s), each into 3 domains" in r.output, r.output
    assert Image.open(tmp_path / "grid.png").size == (4 + 4 * 68, 4 + 2 * 80)  # a row per image: it and 3 domains


@pytest.mark.parametrize("args, expected", [
    (["--ckpt", "{star}", "--input", "{tmp}/in", "--domain", "rnig"], "--domain 'rnig': the generator's domains are "
                                                                      "disc, square, ring (did you mean 'ring'?)"),
    (["--ckpt", "{star}", "--input", "{tmp}/in", "--domain", "disc,ring"], "translates into one of disc, square, ring"),
    (["--ckpt", "{star}", "--domain", "ring"], "translates images into a domain: pass --input"),
    (["--ckpt", "{star}", "--input", "{tmp}/in", "--samples", "4"],
     "--samples: generator {star} (model family 'stargan') translates images into a domain; that option is for a "
     "generator that draws samples from noise z"),
    (["--ckpt", "{dcgan}", "--domain", "ring"], "--domain: generator {dcgan} (model family 'dcgan') draws samples "
                                                "from noise z; that option is for a generator that translates images"),
])
def test_bad_sample_input_for_a_translator_is_one_line_exit_2(tmp_path, args, expected):
    paths = {"tmp": tmp_path, "star": tiny_checkpoints(tmp_path / "star", config=_cfg())[0],
             "dcgan": tiny_checkpoints(tmp_path / "dcgan", config=DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8))[0]}
    _photo(tmp_path / "in" / "a.png", (32, 32), 0)
    r = _bench("sample", *[a.format(**paths) for a in args], "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert expected.format(**paths) in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "out").exists()
