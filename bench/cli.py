"""The ``bench`` command: a thin click shell over dcgan's training and the benchmark tasks.

User errors (``DCGANError``) become one line on stderr and exit code 2; anything else is a bug and
keeps its traceback. Heavy imports happen inside the commands, so ``bench --help`` stays instant.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from bench.cli_cache import cache
from bench.cli_sample import sample
from bench.cli_train import train
from bench.cli_weights import weights
from dcgan.errors import DCGANError


class UserError(click.ClickException):
    exit_code = 2


class _Group(click.Group):
    def invoke(self, ctx):
        warnings.formatwarning = _one_line_warning
        try:
            return super().invoke(ctx)
        except DCGANError as e:
            raise UserError(str(e)) from None


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings of the command (e.g. --resume with nothing to resume) as one line on stderr, like errors."""
    return f"warning: {message}\n"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="dcgan-bench")
def main():
    """dcgan-bench: train DCGANs and benchmark their representations the way the paper did.

    \b
    Start with:   bench quickstart            (needs no download, a few minutes on a CPU)
    Then:         bench train --dataset fashion-mnist --data-root PATH --image-size 32 --epochs 5
                  bench list                  (data sets and benchmark tasks)
    """


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--set {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


@main.command()
@click.argument("task")
@click.option("--ckpt", type=click.Path(), default=None,
              help="Checkpoint: d.pt for feature tasks, g.pt (or a run's ckpt/ folder) for sample tasks.")
@click.option("--dataset", default=None, help="Data set (default: the task's own, e.g. cifar10 for cifar10-svm).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Folder holding the data set's files.")
@click.option("--split", default=None, help="The split a task reads, for tasks that read one (default: the task's).")
@click.option("--real", default=None, metavar="SOURCE",
              help="fid: the real images, dataset:NAME[:SPLIT] or folder:PATH (default: dataset:<--dataset>:train).")
@click.option("--fake", default=None, metavar="SOURCE",
              help="fid: what is compared with them, ckpt:PATH (a generator or a run's ckpt/ folder; default: "
                   "--ckpt), folder:PATH or dataset:NAME:SPLIT.")
@click.option("--subset", type=click.IntRange(1), default=None, help="Use N images per split (drawn with --seed).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="Precision of feature extraction / sampling.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@click.option("--recipe", default=None, metavar="NAME",
              help="A named setting of the task's parameters (see `bench list TASK`); --set overrides its fields.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A task parameter (see `bench list TASK`); lists are comma-separated, none clears.")
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default="results", show_default=True)
def run(task, ckpt, dataset, data_root, split, real, fake, subset, seed, device, precision, batch_size, recipe, sets,
        results_dir):
    """Run benchmark TASK (see `bench list`) and write its rows to results/TASK.csv.

    \b
    Examples:
      bench run cifar10-svm --ckpt runs/cifar10/d.pt --data-root ~/data/cifar10
      bench run svm --dataset fashion-mnist --ckpt d.pt --set labels_per_class=100
      bench run svhn-svm --ckpt d.pt --set draws=100
      bench run fid --ckpt runs/cifar10/g.pt --data-root ~/data/cifar10
      bench run fid --ckpt runs/cifar10/ckpt/ --set samples=10000      (every epoch: FID vs step + PNG)
      bench run fid --fake folder:samples/ --real folder:other/
      bench run dedup --data-root photos/ --set radius=0,2   (a folder of images; or --dataset lsun)
      bench run dedup --dataset cifar10 --data-root ~/data/cifar10 --recipe recommended --set inject=1000
      bench run forget --ckpt g.pt --set boxes=boxes.csv       (without boxes: the numbered samples)
      bench run guided-backprop --ckpt d.pt --dataset fashion-mnist --data-root ~/data/fashion-mnist
      bench run memorisation --ckpt g.pt --dataset fashion-mnist --data-root ~/data/fashion-mnist
      torchrun --nproc_per_node 4 $(which bench) run cifar10-svm --ckpt d.pt --data-root ~/data/cifar10
                                  (the processes share the extraction; rank 0 fits and writes)
    """
    from bench.run import run as run_task
    from bench.shards import on_rank0

    overrides = _parse_sets(sets)
    result = on_rank0(device, lambda dev: run_task(
        task, ckpt=ckpt, dataset=dataset, data_root=data_root, split=split, real=real, fake=fake, seed=seed,
        subset=subset, device=dev, precision=precision, batch_size=batch_size, overrides=overrides, recipe=recipe,
        results_dir=results_dir))
    if result is None:  # a rank > 0 of a torchrun job: it extracted its shares, rank 0 reports
        return
    from bench.report import summarize, to_markdown

    if result.message:  # the task stopped for the user's input: no rows, what to do next
        click.echo(result.message)
        return
    click.echo(to_markdown(summarize(result.rows)))
    cached = (f"; features cached: {result.cache_hits} hit(s), {result.cache_misses} extracted"
              if result.cache_hits or result.cache_misses else "")  # tasks that never extract features
    click.echo(f"{len(result.rows)} rows -> {result.path} ({result.seconds:.1f} s{cached})")
    if result.figure:
        click.echo(f"plot -> {result.figure}")


@main.command()
@click.argument("run_dir", metavar="RUN", required=False, type=click.Path(file_okay=False))
@click.option("--g", "g", type=click.Path(dir_okay=False), default=None,
              help="A generator checkpoint from elsewhere (g.pt, netG_epoch_N.pth), instead of RUN.")
@click.option("--d", "d", type=click.Path(dir_okay=False), default=None,
              help="A discriminator checkpoint, instead of RUN.")
@click.option("--dataset", default=None, help="The data set it was trained on (default: the run's own).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Its files (default: the run's own).")
@click.option("--budget", default="standard", show_default=True, help="smoke (minutes) | standard | paper (hours).")
@click.option("--suite", "suite_file", type=click.Path(dir_okay=False), default=None,
              help="Your own suite file (TOML, the format of bench/suites/*.toml) instead of --budget.")
@click.option("--only", multiple=True, metavar="TASK", help="Run only these tasks of the suite.")
@click.option("--skip", multiple=True, metavar="TASK", help="Leave these tasks of the suite out.")
@click.option("--name", default=None, help="The report card's name (default: the run folder's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default="results", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="The report card's folder (default: <results>/report/<name>).")
def evaluate(run_dir, g, d, dataset, data_root, budget, suite_file, only, skip, name, seed, device, precision,
             batch_size, results_dir, out):
    """Run every task that applies to a trained GAN and write its report card (HTML + Markdown).

    \b
    Examples:
      bench evaluate runs/fmnist --budget smoke
      bench evaluate runs/cifar10 --only svm --only fid
      bench evaluate --g netG_epoch_24.pth --d netD_epoch_24.pth --dataset cifar10 --data-root ~/data/cifar10

    Runs whose rows are already in results/ are not done again, so a second evaluate of the same
    model (or one after Ctrl-C) does only what is missing.
    """
    from bench.evaluate import evaluate as run_evaluation
    from bench.shards import on_rank0
    from bench.subject import from_checkpoints, from_run
    from bench.suite import budget_path, load_suite, select

    if run_dir and (g or d):
        raise UserError("give a run folder or --g/--d checkpoints, not both")

    def evaluation(dev: str):
        suite = load_suite(suite_file) if suite_file else load_suite(budget_path(budget), budget)
        subject = (from_run(run_dir, dataset, data_root, name) if run_dir
                   else from_checkpoints(g, d, dataset, data_root, name))
        return run_evaluation(subject, select(suite, only, skip), results_dir=results_dir, out=out, device=dev,
                              seed=seed, precision=precision, batch_size=batch_size, echo=click.echo)

    try:
        done = on_rank0(device, evaluation)
    except KeyboardInterrupt:
        sys.exit(130)
    if done is None:  # a rank > 0 of a torchrun job: it extracted its shares, rank 0 reports
        return
    page, steps = done
    failed = [s for s in steps if s.status == "failed"]
    click.echo(f"report card: {page} (and {page.with_name('report.md')})"
               + (f"; {len(failed)} run(s) failed, see the card" if failed else ""))


@main.command()
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default="results", show_default=True)
@click.option("--task", "tasks", multiple=True, help="Only these tasks.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the Markdown to this file.")
@click.option("--html", is_flag=True,
              help="Also write the leaderboard page, <results>/report/index.html: one line per checkpoint.")
def report(results_dir, tasks, out, html):
    """Summarise results/*.csv: mean ± std over draws, with the paper's numbers beside ours."""
    from bench.report import load_rows, summarize, to_markdown
    from dcgan.fsutil import atomic_path, writable_folder

    if out:
        writable_folder(Path(out).parent, "output folder")
    rows = load_rows(results_dir, tasks)
    if not rows:
        raise UserError(f"no result rows under {results_dir}" + (f" for {', '.join(tasks)}" if tasks else ""))
    text = to_markdown(summarize(rows), references=True)
    click.echo(text)
    if out:
        with atomic_path(out) as tmp:
            tmp.write_text(text + "\n")
        click.echo(f"wrote {out}")
    if html:
        from bench.report.leaderboard import write_leaderboard

        click.echo(f"wrote {write_leaderboard(results_dir)}")


@main.command("list")
@click.argument("task", required=False)
def list_cmd(task):
    """List the benchmark tasks, data sets and model families; with TASK, each of its parameters and recipes."""
    from bench.params import table
    from bench.run import TASKS
    from dcgan.data import DATASETS
    from dcgan.models import FAMILIES

    if task:
        t = TASKS.get(task)
        click.echo(f"{t.name}: {t.summary}" + (f" [paper section {t.paper}]" if t.paper else ""))
        needs = [t.needs or "", "data" if t.reads_data else "", "--split" if t.default_split else "",
                 "--real/--fake" if t.takes_sources else ""]
        click.echo(f"needs: {', '.join(n for n in needs if n) or 'nothing'}; default data set: "
                   f"{t.default_dataset or '(--dataset)'}" + (f"; split: {t.default_split}" if t.default_split else ""))
        click.echo("parameters (--set KEY=VALUE):")
        for p in table(t.Params):
            click.echo(f"  {p['name']}  [{p['type']}, default {p['default']}; {p['allowed']}]")
            click.echo(f"      {p['help']}")
        for name, values in t.recipes.items():
            shown = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in values.items())
            click.echo(f"recipe {name}: {shown or '(the defaults)'}")
        return
    click.echo("tasks (bench list TASK: its parameters):")
    for name, t in TASKS.items():
        click.echo(f"  {name:22s} {t.summary}")
    click.echo("data sets:")
    for name, spec in DATASETS.items():
        click.echo(f"  {name:22s} {'/'.join(spec.splits):18s} {spec.description}")
    click.echo("model families (bench train --model):")
    for name, family in FAMILIES.items():
        click.echo(f"  {name:22s} {family.summary}")


@main.command()
@click.option("--out", type=click.Path(file_okay=False), default="runs/quickstart", show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=80, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--results", "results_dir", type=click.Path(file_okay=False), default="results", show_default=True)
def quickstart(out, epochs, device, seed, results_dir):
    """Train a small DCGAN on scikit-learn's bundled digits, then evaluate it (no download).

    Writes sample grids per epoch, g.pt / d.pt and the loss log into --out (a few CPU minutes),
    then runs `bench evaluate --budget smoke` on that run: the paper's feature benchmark (an
    L2-SVM on D's max-pooled features beside a randomly initialised D and raw pixels, with every
    label and with 10 labels a class over 50 draws, and per D layer), FID when the Inception
    weights are there, the section-6 studies, and the report card. Re-running continues an
    interrupted run and re-uses what was measured.
    """
    from bench.evaluate import evaluate
    from bench.report import summarize, to_markdown
    from bench.results import read_rows
    from bench.subject import from_run
    from bench.suite import budget_path, load_suite
    from dcgan.config import DCGANConfig
    from dcgan.train import TrainConfig
    from dcgan.train import train as run_training

    cfg = TrainConfig(model=DCGANConfig(image_size=32, nc=1, ngf=32, ndf=32), dataset="digits",
                      epochs=epochs, batch_size=64, seed=seed, checkpoint_every=100)
    trainer = run_training(cfg, out, device=device, resume=(Path(out) / "checkpoint.pt").exists())
    click.echo(f"trained {trainer.step} steps on digits: samples in {Path(out) / 'samples'}, "
               f"checkpoints {Path(out) / 'g.pt'} and {Path(out) / 'd.pt'}")
    page, steps = evaluate(from_run(out), load_suite(budget_path("smoke"), "smoke"), results_dir=results_dir,
                           device=device, seed=seed, echo=click.echo)
    probes = [s for s in steps if s.task == "svm" and not s.entry.per_layer and s.measured]
    rows = [r for s in probes for r in read_rows(s.planned.table) if r["run_id"] == s.run_id
            and r["metric"] == "accuracy"]
    click.echo(to_markdown(summarize(rows)))
    click.echo(f"rows in {Path(results_dir)}/*.csv; report card: {page}")


main.add_command(cache)
main.add_command(sample)
main.add_command(train)
main.add_command(weights)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
