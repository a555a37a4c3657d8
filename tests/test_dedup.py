"""Near-duplicate detection on real digits written as JPEG files: the faiss search against a brute-force
Hamming computation, clusters, injected edits and their scores, bad files, and `bench run dedup`."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.hashing import augment, autoencoder, clusters, collection, hamming, search
from bench.cli import main
from bench.inject import EDIT_NAMES, EDITS, Injected, score
from bench.results import RESULT_COLUMNS
from dcgan.errors import ConfigError, DataError, DCGANError
from dcgan.data import load_dataset
from fixtures_tasks import digits_images

QUICK = ["--set", "epochs=2", "--set", "radius=0,3", "--set", "phash_radius=0,6"]


def write_digits_folder(root, per_class=20):
    """Real handwritten digits, 32x32, as JPEG files under root/<digit>/<i>.jpg (the folder data set's format)."""
    images, labels = digits_images(32, {"train": per_class})["train"]
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert("RGB").save(root / str(label) / f"{i:04d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The folder data set of 200 digit JPEGs, a small autoencoder trained on it, and 60 injected copies."""
    data = load_dataset("folder", root=write_digits_folder(tmp_path_factory.mktemp("digits")), image_size=32,
                        channels=3)
    images = torch.stack([data[i][0] for i in range(len(data))])
    net, _ = autoencoder.train_autoencoder(images, autoencoder.AERecipe(epochs=3), seed=0)
    return data, net, Injected(data, 60, EDIT_NAMES, seed=0)


def brute_force_pairs(codes, radius):
    """Every (i, j, distance), i < j, within ``radius``, from the full distance matrix."""
    D = hamming.hamming(codes[:, None], codes[None])
    i, j = np.nonzero(np.triu(D <= radius, 1))
    return set(zip(i.tolist(), j.tolist(), D[i, j].tolist()))


def test_search_matches_brute_force_hamming(digits):
    data, net, _ = digits
    images = torch.stack([data[i][0] for i in range(len(data))])
    images = torch.cat([images, images[[5, 5, 17, 40]]])  # exact copies: a group of three, two of two
    for codes in (net.hash(images), collection.phash(images)):
        counts = []
        for r in (0, 1, 3, 8):
            matches = search.search(codes, r)
            pairs = matches.pairs()
            found = set(zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist()))
            assert found == brute_force_pairs(codes, r) and len(found) == len(pairs) == len(matches), r
            assert np.array_equal(pairs.i, np.sort(pairs.i)), r
            counts.append(len(pairs))
        assert counts[-1] > counts[0] >= 5  # the copies collide; similar digits come within larger radii


def brute_force_clusters(codes, radius):
    i, j, _ = np.array(sorted(brute_force_pairs(codes, radius))).reshape(-1, 3).T
    return clusters.cluster(i, j, len(codes))


def test_identical_codes_are_grouped_not_expanded_into_pairs():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (200, 16), dtype=np.uint8)  # random codes: ~64 bits apart
    near = codes[7].copy()
    near[0] ^= 0b11  # 2 bits from code 7
    codes = np.concatenate([codes, np.repeat(codes[7:8], 150, axis=0), np.repeat(codes[9:10], 40, axis=0), [near]])
    codes = codes[rng.permutation(len(codes))]
    for r in (0, 2, 3):
        m = search.search(codes, r)
        assert len(m.near) == (r >= 2)  # a group is one entry: only code 7's group and its near code are a pair
        pairs = m.pairs()
        assert set(zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist())) == brute_force_pairs(codes, r)
        assert len(m) == len(pairs) == 151 * 150 // 2 + 41 * 40 // 2 + 151 * (r >= 2)
        c, expected = m.clusters(), brute_force_clusters(codes, r)
        assert np.array_equal(c.label, expected.label) and np.array_equal(c.kept, expected.kept)
        some = np.array([0, 5, 100])
        part = m.pairs(some)
        assert set(zip(part.i.tolist(), part.j.tolist())) == {
            (i, j) for i, j in zip(pairs.i.tolist(), pairs.j.tolist()) if i in some or j in some}

    big = np.repeat(codes[:1], 30_000, axis=0)  # 450 million pairs if listed
    big = np.concatenate([big, codes[1:3]])
    m = search.search(big, 4)
    assert len(m) == 30_000 * 29_999 // 2 and len(m.near) == 0 and len(m.clusters()) == 1
    assert len(m.pairs(np.array([5]))) == 29_999


def test_ivf_index_equals_the_exact_index_when_it_probes_every_list(digits):
    data, net, injected = digits
    images = torch.stack([injected[i][0] for i in range(len(injected))])
    for codes in (net.hash(images), collection.phash(images)):
        for r in (3, 8):
            flat = search.search(codes, r, index="flat")
            every = search.search(codes, r, index="ivf", nprobe=10**6)
            one = search.search(codes, r, index="ivf", nprobe=1)
            assert flat.index == "flat" and every.index == "ivf"
            assert all(np.array_equal(a, b) for a, b in zip(flat.near, every.near)), r
            found = set(zip(flat.near.i.tolist(), flat.near.j.tolist()))
            assert set(zip(one.near.i.tolist(), one.near.j.tolist())) <= found  # approximate: a subset
    with pytest.raises(ConfigError, match="index='hnsw'"):
        search.search(codes, 1, index="hnsw")


def test_the_hash_is_the_active_code_units(digits):
    data, net, _ = digits
    images = torch.stack([data[i][0] for i in range(8)])
    codes = net.hash(images)
    assert codes.shape == (8, 16) and codes.dtype == np.uint8
    with torch.no_grad():
        active = torch.relu(net.encoder(images.reshape(8, -1).float() / 127.5 - 1 - net.mean)) > 0
    assert (np.unpackbits(codes, axis=1) == active.numpy()).mean() > 0.999
    assert len(np.unique(codes, axis=0)) == 8  # eight different digits, eight different hashes
    assert 0.2 < active.float().mean() < 0.8  # centred inputs: no collapse onto a few active units


def test_chunked_hashing_gives_the_codes_of_one_pass(digits):
    _, net, injected = digits
    hashers = {"ae-hash": net.hash, "phash": collection.phash}
    small, whole = (collection.hash_collection(injected, hashers, chunk) for chunk in (7, 10_000))
    assert np.array_equal(small.ids, np.arange(len(injected))) and np.array_equal(small.ids, whole.ids)
    for method in hashers:
        assert np.array_equal(small.codes[method], whole.codes[method]), method
    assert small.codes["ae-hash"].shape == (260, 16) and small.codes["phash"].shape == (260, 8)


def test_clusters_are_connected_components_keeping_the_lowest_index():
    pairs = hamming.Pairs(np.array([0, 3, 7, 2, 1]), np.array([3, 5, 8, 9, 9]), np.zeros(5, dtype=np.int64))
    c = clusters.cluster(pairs.i, pairs.j, 11)
    assert c.kept.tolist() == [0, 1, 7]
    assert c.label.tolist() == [0, 1, 1, 0, -1, 0, -1, 2, 2, 1, -1]
    assert c.flagged.tolist() == [2, 3, 5, 8, 9]
    none = search.search(np.zeros((0, 16), np.uint8), 0).clusters()
    assert len(none) == 0 and len(none.flagged) == 0


def test_edits_change_pixels_deterministically(digits):
    data, _, _ = digits
    image = data[3][0].permute(1, 2, 0).numpy()
    for name, edit in EDITS.items():
        a, b = edit(image, np.random.default_rng(1)), edit(image, np.random.default_rng(1))
        assert a.shape == image.shape and a.dtype == np.uint8 and np.array_equal(a, b), name
        assert np.array_equal(a, image) == (name == "copy"), name
    shifted = EDITS.get("shift")(image, np.random.default_rng(1))
    moved = [np.array_equal(np.roll(image, s, axis)[3:-3, 3:-3], shifted[3:-3, 3:-3])
             for axis in (0, 1) for s in (-3, -2, -1, 1, 2, 3)]
    assert sum(moved) == 1  # one pure translation by 1-3 px


def test_injected_pairs_scored_against_brute_force(digits):
    data, net, injected = digits
    n = len(data)
    images = torch.stack([injected[i][0] for i in range(len(injected))])
    truth = injected.truth()
    src, copy = np.array(list(truth)).T
    assert len(truth) == 60 and (copy >= n).all() and len(set(src)) == 60
    for codes in (net.hash(images), collection.phash(images)):
        D = hamming.hamming(codes[:, None], codes[None])
        for r in (0, 4):
            pairs = search.search(codes, r).pairs(np.arange(n, len(codes)))  # those involving a copy
            got = score(set(zip(pairs.i.tolist(), pairs.j.tolist())), truth, n)
            found = np.triu(D <= r, 1)
            involved = found[:, n:].sum()  # pairs whose higher index is an injected copy
            hits = found[src, copy].sum()
            assert got["precision"] == pytest.approx(hits / involved)
            assert got["recall"] == pytest.approx(hits / 60)
            assert got["recall_copy"] == 1.0  # an exact copy always collides
        assert got["recall"] > 1 / len(EDIT_NAMES)  # more than the copies are found at radius 4


def test_training_shifts_are_translations_with_edge_pixels_repeated(digits):
    data, _, _ = digits
    images = torch.stack([data[i][0] for i in range(40)])
    moved = augment.translated(images, 3, torch.Generator().manual_seed(0))
    assert moved.shape == images.shape and torch.equal(moved, moved.round())
    offsets = []
    for a, b in zip(images.float(), moved):
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if torch.equal(torch.roll(a, (dy, dx), (1, 2))[:, 3:-3, 3:-3], b[:, 3:-3, 3:-3])]
        assert found, "not a translation by at most 3 px"
        offsets.append(found[0])
    assert len(set(offsets)) > 5  # drawn per image
    assert torch.equal(augment.translated(images, 0, torch.Generator()), images.float())


def test_autoencoder_cache_key_follows_data_recipe_and_seed():
    base = autoencoder.autoencoder_cache_path("abc", "t", autoencoder.AERecipe(), 0)
    assert base == autoencoder.autoencoder_cache_path("abc", "t", autoencoder.AERecipe(), 0)
    others = [autoencoder.autoencoder_cache_path("abd", "t", autoencoder.AERecipe(), 0),
              autoencoder.autoencoder_cache_path("abc", "u", autoencoder.AERecipe(), 0),
              autoencoder.autoencoder_cache_path("abc", "t", autoencoder.AERecipe(noise_std=0.3), 0),
              autoencoder.autoencoder_cache_path("abc", "t", autoencoder.AERecipe(), 1)]
    assert len({base, *others}) == 5


def _run(tmp_path, root, *extra):
    args = ["run", "dedup", "--data-root", str(root), "--device", "cpu", "--results", str(tmp_path / "results"),
            *QUICK, *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_bench_run_dedup_end_to_end(tmp_path):
    root = write_digits_folder(tmp_path / "photos", per_class=10)
    r = _run(tmp_path, root, "--set", "inject=30")
    assert r.exit_code == 0, r.output
    assert "dedup.csv (" in r.output and "features cached" not in r.output  # dedup uses no feature cache
    df = pd.read_csv(tmp_path / "results" / "dedup.csv")
    assert tuple(df.columns) == RESULT_COLUMNS
    assert set(df.model) == {"ae-hash", "phash"}
    assert set(df.features) == {"128-bit r=0", "128-bit r=3", "64-bit r=0", "64-bit r=6"}
    value = df.set_index(["model", "features", "metric"]).value
    assert value["ae-hash", "128-bit r=0", "images"] == 130
    assert value["ae-hash", "128-bit r=0", "recall_copy"] == 1.0
    for metric in ("pairs", "clusters", "flagged", "precision", "recall", "f1"):
        assert ("ae-hash", "128-bit r=3", metric) in value.index, metric
    r3 = df[(df.model == "ae-hash") & (df.features == "128-bit r=3")].iloc[0]
    assert json.loads(r3.params)["radius"] == 3  # the row's own radius is one of its inputs
    assert {"seconds_search", "seconds_train"} <= set(json.loads(r3.details))  # timings are details
    assert json.loads(df.details[0])["ae_source"] == "trained"
    run_id = df.run_id[0]
    clusters = pd.read_csv(tmp_path / "results" / "dedup" / run_id / "clusters.csv")
    assert list(clusters.columns) == ["method", "radius", "cluster", "image", "index", "kept", "distance"]
    ae0 = clusters[(clusters.method == "ae-hash") & (clusters.radius == 0)]
    assert len(ae0) - ae0.kept.sum() == value["ae-hash", "128-bit r=0", "flagged"]
    assert (ae0.distance == 0).all() and ae0.image.str.startswith("injected").any()
    with Image.open(tmp_path / "results" / "dedup" / run_id / "clusters.png") as sheet:
        assert sheet.format == "PNG" and sheet.width >= 2 * 64

    r = _run(tmp_path, root, "--set", "inject=30")  # the same run again: rows replaced, autoencoder from the cache
    assert r.exit_code == 0, r.output
    again = pd.read_csv(tmp_path / "results" / "dedup.csv")
    assert len(again) == len(df) and json.loads(again.details[0])["ae_source"] == "cached"

    ae = json.loads(again.details[0])["ae"]
    other = write_digits_folder(tmp_path / "other", per_class=4)
    r = _run(tmp_path, other, "--set", f"ae={ae}")  # another collection hashed with this autoencoder
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "results" / "dedup.csv")
    mine = rows[(rows.run_id != run_id) & (rows.model == "ae-hash")]
    assert len(mine) and (mine.details.map(lambda p: json.loads(p)["ae_source"]) == "given").all()


def test_truncated_jpeg_is_reported_and_skipped(tmp_path):
    root = write_digits_folder(tmp_path / "photos", per_class=6)
    broken = sorted((root / "3").glob("*.jpg"))[2]
    broken.write_bytes(broken.read_bytes()[:200])
    r = _run(tmp_path, root, "--set", "methods=ae-hash")
    assert r.exit_code == 0, r.output
    assert f"skipped: {broken}: cannot decode image" in r.output
    df = pd.read_csv(tmp_path / "results" / "dedup.csv")
    value = df.set_index(["features", "metric"]).value
    assert value["128-bit r=0", "images"] == 59 and value["128-bit r=0", "images_skipped"] == 1
    skipped = tmp_path / "results" / "dedup" / df.run_id[0] / "skipped.csv"
    assert pd.read_csv(skipped).image.tolist() == [str(broken)]
    broken.unlink()  # mended: other files, so another run, with no list of skipped files; the first one's stays
    assert _run(tmp_path, root, "--set", "methods=ae-hash").exit_code == 0
    runs = pd.read_csv(tmp_path / "results" / "dedup.csv").run_id.unique().tolist()
    assert len(runs) == 2 and skipped.exists()
    assert not (tmp_path / "results" / "dedup" / runs[1] / "skipped.csv").exists()


def test_the_same_run_reading_every_image_leaves_no_stale_list_of_skipped_files(tmp_path, monkeypatch):
    """An image that failed to read once (e.g. a network file system's hiccup) and reads the next time: the
    same files, so the same run, whose list of skipped files would be stale."""
    from dcgan.data import pixels

    root = write_digits_folder(tmp_path / "photos", per_class=6)
    flaky = str(sorted((root / "3").glob("*.jpg"))[2])
    decode = pixels.decode_image

    def fails_on_flaky(source, where, mode):
        if where == flaky:
            raise DataError(f"{where}: cannot decode image (read error)")
        return decode(source, where, mode)

    with monkeypatch.context() as m:
        m.setattr(pixels, "decode_image", fails_on_flaky)
        assert _run(tmp_path, root, "--set", "methods=ae-hash").exit_code == 0
    skipped = tmp_path / "results" / "dedup" / pd.read_csv(tmp_path / "results" / "dedup.csv").run_id[0] / "skipped.csv"
    assert pd.read_csv(skipped).image.tolist() == [flaky]
    assert _run(tmp_path, root, "--set", "methods=ae-hash").exit_code == 0 and not skipped.exists()


def test_empty_folder_and_a_wrong_autoencoder_file_are_one_line_errors(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    r = _run(tmp_path, tmp_path / "empty")
    assert r.exit_code == 2
    assert "no images found under" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    root = write_digits_folder(tmp_path / "photos", per_class=1)
    not_ae = next(root.rglob("*.jpg"))
    r = _run(tmp_path, root, "--set", f"ae={not_ae}")
    assert r.exit_code == 2
    assert "not a hashing autoencoder" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_substring_join_equals_the_exact_flat_index():
    """Random codes plus copies 1-11 bits away (every slack layout is exercised) and real digit codes."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (300, 16), dtype=np.uint8)
    bits = np.unpackbits(base[rng.integers(0, 300, 600)], axis=1)
    for row, flips in zip(bits, rng.integers(1, 12, 600)):
        row[rng.choice(128, flips, replace=False)] ^= 1
    codes = search._group(np.concatenate([base, np.packbits(bits, axis=1)]))[0]
    for r in (1, 3, 5, 6, 8, 11):
        joined, flat = search.substring_join(codes, r), search.search(codes, r, index="flat").near
        assert len(flat) > 40 and all(np.array_equal(a, b) for a, b in zip(joined, flat)), r
    assert search.search(codes, 8).index == "substrings" and search.search(codes, 12).index == "flat"
    with pytest.raises(ConfigError, match="radius=12: the substring join takes 1 to 11"):
        search.substring_join(codes, 12)


def test_substring_join_on_correlated_real_codes(digits):
    data, net, injected = digits
    codes = search._group(net.hash(torch.stack([injected[i][0] for i in range(len(injected))])))[0]
    for r in (4, 9):
        found = search.substring_join(codes, r)
        assert set(zip(found.i.tolist(), found.j.tolist(), found.d.tolist())) == brute_force_pairs(codes, r), r


def test_star_rule_flags_only_images_within_the_radius_of_the_kept_one():
    codes = np.zeros((4, 16), dtype=np.uint8)
    codes[1, 0], codes[2, 0], codes[2, 1] = 0b1111, 0b1111, 0b1111  # 0 -4- 1 -4- 2, 0 and 2 eight apart
    codes[3] = 255  # alone
    chained = search.search(codes, 4).clusters()
    assert chained.label.tolist() == [0, 0, 0, -1] and chained.flagged.tolist() == [1, 2]
    kept = clusters.star(chained, codes, 4)
    assert kept.label.tolist() == [0, 0, -1, -1] and kept.flagged.tolist() == [1] and kept.kept.tolist() == [0]
    assert len(clusters.star(search.search(codes[[0, 2]], 8).clusters(), codes[[0, 2]], 7)) == 0


def test_shift_probes_match_a_brute_force_search_and_find_moved_copies(digits):
    data, net, _ = digits
    n = len(data)
    originals = torch.stack([data[i][0] for i in range(n)])
    copies = augment.moved(originals[:30], torch.tensor([[0, 2], [-3, 0], [0, -1]] * 10))
    assert torch.equal(copies[0, :, :, 2:], originals[0, :, :, :-2].float())  # moved 2 px right
    assert torch.equal(copies[1, :, :-3], originals[1, :, 3:].float())  # moved 3 px up
    images = torch.cat([originals, copies.to(torch.uint8)])
    for hasher, radii in ((net.hash, (0, 3, 8)), (collection.phash, (0, 4))):
        codes, probes = hasher(images), collection.probe_codes(hasher, images, 3)
        assert probes.shape == (len(images), 12, codes.shape[1])
        to_code = hamming.hamming(probes[:, :, None], codes[None, None]).min(1)  # [i, j]: i's nearest probe to j's code
        H = hamming.hamming(codes[:, None], codes[None])
        a, b = np.triu_indices(len(images), 1)
        own = np.minimum(H, np.minimum(to_code, to_code.T))  # the rows' own hashes and probes
        assert np.array_equal(clusters.distance(codes, a, b, probes), own[a, b])
        # search: identical codes stand for each other, so a probe of any image with i's code counts for i
        to_code = np.where((H == 0)[:, :, None], to_code[None], 10**6).min(1)
        D = np.minimum(H, np.minimum(to_code, to_code.T))
        truth = {(k, n + k) for k in range(30)}
        for r in radii:
            for index in ("auto", "flat"):
                pairs = search.search(codes, r, index, probes=probes).pairs()
                found = set(zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist()))
                assert found == {(i, j, d) for i, j, d in zip(a.tolist(), b.tolist(), D[a, b].tolist()) if d <= r}, r
            plain = search.search(codes, r).pairs()
            assert len(truth & set(zip(pairs.i.tolist(), pairs.j.tolist()))) >= \
                len(truth & set(zip(plain.i.tolist(), plain.j.tolist())))
        assert len(truth & set(zip(pairs.i.tolist(), pairs.j.tolist()))) >= 20, hasher  # most moved copies found


def test_median_thresholds_balance_the_bits_and_normalising_ignores_brightness(digits):
    data, _, _ = digits
    images = torch.stack([data[i][0] for i in range(len(data))])
    paper = autoencoder.train_autoencoder(images, autoencoder.AERecipe(epochs=2), seed=0)[0]
    median = autoencoder.train_autoencoder(images, autoencoder.AERecipe(epochs=2, threshold="median", normalize=True),
                                           seed=0)[0]
    assert not paper.threshold.any() and not paper.normalize
    share = np.unpackbits(median.hash(images), axis=1).mean(0)
    assert np.allclose(share, 0.5, atol=0.01)  # every bit set on half the training images
    brighter = (images.int() * 3 // 4 + 40).to(torch.uint8)  # contrast and brightness changed, nothing clipped
    moved = [hamming.hamming(net.hash(images), net.hash(brighter)).mean() for net in (paper, median)]
    assert moved[1] < 1 < moved[0]  # bits moved per image: normalised inputs barely notice


def test_jitter_changes_brightness_and_contrast_within_bounds(digits):
    data, _, _ = digits
    images = torch.stack([data[i][0] for i in range(40)])
    lit = augment.jittered(images, 0.25, torch.Generator().manual_seed(0))
    assert lit.shape == images.shape and lit.min() >= 0 and lit.max() <= 255
    shift = (lit - images.float()).mean((1, 2, 3))
    assert shift.abs().max() <= 0.25 * 128 + 1e-3 and shift.std() > 5  # drawn per image


def test_an_autoencoder_saved_before_thresholds_existed_hashes_as_the_paper(tmp_path, digits):
    data, net, _ = digits
    path = tmp_path / "old.pt"
    state = {k: v for k, v in net.state_dict().items() if k not in ("normalize", "threshold")}
    torch.save({"state_dict": state, "info": {}}, path)
    loaded, _ = autoencoder.load_autoencoder(path)
    images = torch.stack([data[i][0] for i in range(20)])
    assert not loaded.threshold.any() and not loaded.normalize
    assert np.array_equal(loaded.hash(images), net.hash(images))


class _RunsCode:
    """Unpickled by a plain unpickler, this writes ``marker``: what a malicious autoencoder file could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_an_autoencoder_file_that_would_run_code_is_refused(tmp_path, digits):
    _, net, _ = digits
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    torch.save({"state_dict": net.state_dict(), "info": {"note": _RunsCode(marker)}}, path)
    torch.load(path, weights_only=False)  # the file is what it claims: plain unpickling runs its code
    assert marker.read_text() == "ran"
    marker.unlink()
    with pytest.raises(DCGANError, match="evil.pt: not a hashing autoencoder"):
        autoencoder.load_autoencoder(path)
    assert not marker.exists()
