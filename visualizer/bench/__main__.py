"""One start-up measurement in this fresh interpreter (`python -m visualizer.bench KIND`, started
by startup.probe): its JSON object on stdout."""

import json
import sys

from visualizer.bench.startup import PROBES

if __name__ == "__main__":
    print(json.dumps(PROBES[sys.argv[1]]()))
