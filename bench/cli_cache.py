"""``bench cache``: list, prune and clear the cache folder (registered on the ``bench`` group in ``bench.cli``)."""
from __future__ import annotations

from pathlib import Path

import click


@click.group()
def cache():
    """The cache folder: list, prune and clear what the suite derived (features, arrays, ...).

    \b
    Features, decoded arrays and data sets, torch-fidelity's real-side features and dedup autoencoders are
    recomputed when missing, so they are pruned least recently used first. Downloaded weights are
    kept unless --include-weights; downloaded data sets (data/) are never removed here. After each
    feature extraction the cache is pruned to $DCGAN_BENCH_CACHE_MAX (default 20G; 0 or none: no cap).
    Sizes are bytes or K/M/G/T, binary: 1K = 1024 bytes, 1G = 1024^3 bytes.
    """


_cache_dir = click.option("--cache-dir", "root", type=click.Path(file_okay=False), default=None,
                          help="The cache folder (default: $DCGAN_BENCH_CACHE, else ~/.cache/dcgan-bench).")


_include_weights = click.option("--include-weights", is_flag=True, help="Remove downloaded weights too.")


def _root(root):
    from dcgan.fsutil import cache_dir

    return Path(root) if root else cache_dir()


@cache.command("list")
@_cache_dir
def cache_list(root):
    """List the entries, most recently used first: kind, size, last use, name, what each holds."""
    from bench.cache import list_lines

    for line in list_lines(_root(root)):
        click.echo(line)


@cache.command("prune")
@click.option("--max-size", required=True, metavar="SIZE",
              help="Remove least recently used entries until the prunable rest totals at most this: bytes or "
                   "K/M/G/T, binary (1K = 1024 bytes), e.g. 500M or 10G.")
@_include_weights
@_cache_dir
def cache_prune(max_size, include_weights, root):
    """Remove least recently used entries until the rest is at most --max-size."""
    from bench.cache import parse_size, prune, prune_lines

    limit = parse_size(max_size, "--max-size")
    for line in prune_lines(prune(_root(root), limit, include_weights=include_weights), limit):
        click.echo(line)


@cache.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_include_weights
@_cache_dir
def cache_clear(yes, include_weights, root):
    """Remove every prunable entry (asks first unless --yes)."""
    from bench.cache import human_size, prunable, prune

    root = _root(root)
    entries = prunable(root, include_weights)
    size = human_size(sum(e.size for e in entries))
    if entries and not yes:
        click.confirm(f"remove {len(entries)} entries ({size}) from {root}?", abort=True)
    removed = prune(root, 0, include_weights=include_weights).removed
    click.echo(f"removed {len(removed)} entries ({human_size(sum(e.size for e in removed))}) from {root}")
