"""`python -m training --config PATH`: one training process (what torchrun and srun start).

The `__main__` guard matters: dist_checkpointing's writer starts processes with the spawn method,
which re-imports this module in each of them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from commonweights.config import load
from commonweights.errors import CommonweightsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("--config", required=True, help="run config (the resolved one for workers)")
    parser.add_argument("--export", action="store_true", help="export hf/ instead of training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        cfg = load(args.config)
        if args.export:
            from training.export import export

            result = export(cfg)
        else:
            from training.train import run

            result = run(cfg)
    except CommonweightsError as e:
        print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
