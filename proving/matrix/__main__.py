"""``make matrix``: install the pinned products, run the suite through each on loopback, write the matrix.

    python -m proving.matrix [--products a,b] [--seed S] [--max-examples N] [--no-install] [--render-only]

1. Installs each product (the only step that needs a package registry) into ``.matrix/<product>/``.
2. Runs the products inside a network namespace of their own (``unshare -rn``, loopback up) where one exists, so
   nothing but 127.0.0.1 can be reached; otherwise on the host network, and the matrix says so.
3. Stores each run in ``.matrix/runs/<product>.json`` and writes docs/compatibility.md and .html from every
   stored run: aligned runs only (same suite commit, seed, example count, profile), or exit 2 with one sentence.

Exit status: 0 when the matrix was written (whatever the products' conformance), 2 when the harness broke or
refused to mix runs, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from proving.matrix import cells, harness, products, render

NETNS_MARK = "MODMSG_MATRIX_NETNS"
EXIT_OK, EXIT_BROKEN, EXIT_INTERRUPTED = 0, 2, 130
NETNS = (
    "every run in a network namespace of its own (unshare -rn) with only loopback; its socket tables sampled every "
    "0.1 s for any non-loopback address"
)
HOST = "host network (no network namespace available): not isolated"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proving.matrix", description=__doc__.splitlines()[0])
    names = ",".join(p.name for p in products.PRODUCTS)
    parser.add_argument("--products", default=names, help=f"comma-separated (default all: {names})")
    parser.add_argument("--seed", type=int, default=1, help="the one seed of every run (default 1)")
    parser.add_argument("--max-examples", type=int, default=100, help="generated cases per mode (default 100)")
    parser.add_argument("--profile", default="openai")
    parser.add_argument("--home", type=Path, default=products.REPO / ".matrix", help="installs and runs (.matrix)")
    parser.add_argument("--out", type=Path, default=products.REPO / "docs", help="where compatibility.* go (docs)")
    parser.add_argument("--no-install", action="store_true", help="use what --home holds; no registry")
    parser.add_argument("--no-netns", action="store_true", help="run on the host network even if unshare works")
    parser.add_argument("--render-only", action="store_true", help="write the matrix from the stored runs only")
    parser.add_argument("pytest_args", nargs="*", help="after --: further pytest arguments, the same for every run")
    return parser


def _selected(spec: str) -> list[products.Product]:
    try:
        return [products.product(name.strip()) for name in spec.split(",") if name.strip()]
    except KeyError as exc:
        raise SystemExit(_fail(str(exc.args[0]))) from None


def _fail(sentence: str) -> int:
    print(f"matrix: {sentence}", file=sys.stderr)
    return EXIT_BROKEN


def netns_available() -> bool:
    """Whether ``unshare -rn`` gives a namespace with loopback up here (tried, not guessed)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = ["unshare", "-rn", "sh", "-c", "ip link set lo up"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _reexec_in_netns(argv: Sequence[str]) -> int:
    """Run this same command again (without installing) inside a fresh network namespace with only loopback."""
    inner = [sys.executable, "-m", "proving.matrix", "--no-install", *argv]
    # A default route into lo: an outbound attempt then waits in the socket tables (where the harness's watch sees
    # it, see harness.watching) instead of failing at once unseen; nothing leaves the namespace either way.
    script = (
        'ip link set lo up && ip route add default dev lo && { ip -6 route add default dev lo || true; } && exec "$@"'
    )
    env = {**os.environ, NETNS_MARK: "1"}
    return subprocess.run(["unshare", "-rn", "sh", "-c", script, "sh", *inner], cwd=products.REPO, env=env).returncode


def install(selected: Sequence[products.Product], home: Path) -> None:
    for product in selected:
        product.install(product.home(home))
        print(f"matrix: {product.name}: {product.version(product.home(home))} installed", flush=True)


def run_all(selected: Sequence[products.Product], home: Path, settings: harness.Settings) -> None:
    for product in selected:
        print(f"matrix: {product.name}: running the suite through {product.title}", flush=True)
        run = harness.run_product(product, product.home(home), home / "reports" / product.name, settings)
        harness.save(run, home / "runs")
        if run.not_judged:
            print(f"matrix: {product.name}: not judged: {run.not_judged}", flush=True)
        else:
            print(f"matrix: {product.name}: {', '.join(f'{n} {s}' for s, n in run.counts.items() if n)}", flush=True)


def write(home: Path, out: Path) -> cells.Matrix:
    matrix = cells.build(harness.load(home / "runs"), order=[p.name for p in products.PRODUCTS])
    docs = {p.name: p.findings for p in products.PRODUCTS if p.name != cells.CONTROL}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compatibility.md").write_text(render.markdown(matrix, docs), encoding="utf-8")
    (out / "compatibility.html").write_text(render.page(matrix, docs), encoding="utf-8")
    return matrix


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    home = args.home.resolve()
    try:
        if not args.render_only:
            selected = _selected(args.products)
            if not args.no_install:
                install(selected, home)
            inside = os.environ.get(NETNS_MARK) == "1"
            if not inside and not args.no_netns and netns_available():
                code = _reexec_in_netns(argv)
                return code
            settings = harness.Settings(
                seed=args.seed,
                max_examples=args.max_examples,
                profile=args.profile,
                suite_commit=harness.suite_commit(),
                isolation=NETNS if inside else HOST,
                watch=inside,
                upstream_url=harness.supports_upstream_url(),
                extra=tuple(args.pytest_args),
            )
            run_all(selected, home, settings)
        matrix = write(home, args.out.resolve())
    except (products.ProductError, cells.Misaligned, ValueError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("matrix: interrupted; every server stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"matrix: wrote {args.out}/compatibility.md and .html ({len(matrix.runs)} columns)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
