"""A screenshot of TensorBoard's scalars dashboard over a logdir, taken in headless Chromium (for docs/images/).

    make run    # or any runs with TensorBoard logs
    .venv/bin/python benchmarks/tensorboard_screenshot.py runs/exercise docs/images/tensorboard-exercise.png

Needs Chromium from the system packages (Debian/Ubuntu: `apt-get install -y chromium`). The
script starts `tensorboard --logdir LOGDIR` on 127.0.0.1 with a free port, waits until it
lists scalar tags for at least `--min-runs` runs, renders `#scalars` with Chromium's
`--screenshot` (`--virtual-time-budget` lets the page's scripts fetch and draw the charts
before the shot), then stops the server. It prints the runs that were shown.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.servers, from any folder

from tests.servers import free_port, scalar_tags, server, wait_until  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # needed as root in a container
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--min-runs", type=int, default=1, help="wait until this many runs have scalars")
    parser.add_argument("--size", default="1400,1000", help="window width,height in pixels")
    parser.add_argument("--budget-ms", type=int, default=20_000, help="Chromium's virtual time budget")
    parser.add_argument(
        "--query",
        default="tagFilter=epoch_(loss|accuracy)&regexInput=validation&_smoothingWeight=0",
        help="the #scalars page's URL state: which tags and runs it shows (default: validation curves, unsmoothed)",
    )
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH: apt-get install -y chromium")
    if not args.logdir.is_dir():
        sys.exit(f"{args.logdir} is not a folder")
    args.png.parent.mkdir(parents=True, exist_ok=True)
    port = str(free_port())
    argv = ["tensorboard", "--logdir", str(args.logdir), "--host", "127.0.0.1", "--port", port]
    with tempfile.TemporaryDirectory() as scratch, server(argv, "/data/runs", Path(scratch) / "tb.log") as base:
        tags = wait_until(lambda: scalar_tags(base, min_runs=args.min_runs), 120, f"{args.min_runs} runs with scalars")
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={scratch}/chromium",
                f"--window-size={args.size}",
                f"--virtual-time-budget={args.budget_ms}",
                f"--screenshot={args.png.resolve()}",
                f"{base}/#scalars&{args.query}",
            ],
            check=True,
            timeout=180,
            capture_output=True,
        )
    print(f"{args.png}: #scalars of {len(tags)} runs: {', '.join(sorted(tags))}")


if __name__ == "__main__":
    main()
