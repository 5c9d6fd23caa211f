#!/usr/bin/python3
"""A deliberately broken cajal, to see each assertion of test_model_cli.py fail once (not a test).

Runs the real binary ($REAL_CAJAL), then damages its result as $MUTATION says:
  scale_output      model run: the output times 1.001 (relative error 1e-3)
  one_value         model run: the first output value + 1e-3 * max |output|
  float64_output    model run: the output written as float64
  drop_batch        model run: the output without its batch axis
  leave_file        model run: a partial file left beside the output
  fail_run          model run: exit 1
  count_plus_one    model inspect --json: parameter_count + 1
  layer_count       model inspect --json: the first layer's parameter_count + 1
  output_shape      model inspect --json: every layer's output_shape with N doubled
  zero_flops        model inspect --json: flops 0

  REAL_CAJAL=build-model/apps/cajal MUTATION=scale_output /usr/bin/python3 -B \\
    tests/model_cli/test_model_cli.py --cajal tests/model_cli/mutant_cajal.py --work /tmp/w \\
    run_matches_pytorch tests/engine/fixtures/unet2d                          # must FAIL
"""
import json
import os
import subprocess
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    mutation = os.environ["MUTATION"]
    if mutation == "fail_run":
        return 1
    result = subprocess.run([os.environ["REAL_CAJAL"], *args], capture_output=True, text=True)
    sys.stderr.write(result.stderr)
    stdout = result.stdout
    if args[:2] == ["model", "run"] and result.returncode == 0:
        out = args[args.index("--output") + 1]
        y = np.load(out)
        if mutation == "scale_output":
            y = y * np.float32(1.001)
        elif mutation == "one_value":
            y.flat[0] += np.float32(1e-3 * np.max(np.abs(y)))
        elif mutation == "float64_output":
            y = y.astype(np.float64)
        elif mutation == "drop_batch":
            y = y[0]
        elif mutation == "leave_file":
            open(os.path.join(os.path.dirname(out), ".y.npy.partial"), "wb").close()
        np.save(out, y)
    if args[:2] == ["model", "inspect"] and result.returncode == 0:
        report = json.loads(stdout)
        if mutation == "count_plus_one":
            report["parameter_count"] += 1
        elif mutation == "layer_count":
            report["layers"][0]["parameter_count"] += 1
        elif mutation == "output_shape":
            for layer in report["layers"]:
                layer["output_shape"][0] *= 2
        elif mutation == "zero_flops":
            report["flops"] = 0
        stdout = json.dumps(report)
    sys.stdout.write(stdout)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
