#!/usr/bin/python3
"""A deliberately broken cajal, to see each integration assertion fail once (not a test).

Runs the real binary ($REAL_CAJAL), then damages its result as $MUTATION says:
  flip_x            convert: voxels mirrored along the first axis (affine kept)
  shift_affine      convert: origin moved 0.01 mm along x (NIfTI, NRRD, MetaImage)
  one_voxel         convert: the centre voxel + 1
  leave_file        convert: on error, a partial file left at OUT
  exit0_on_error    convert: exit 0 instead of the error's code
  hide_uids         convert: UIDs removed from stderr
  info_orientation  info --json: orientation codes reversed
  info_origin       info --json: volume origin moved 1 mm along z

  REAL_CAJAL=build/apps/cajal MUTATION=flip_x /usr/bin/python3 -B \\
    tests/integration/test_dicom_series.py --cajal tests/integration/mutant_cajal.py \\
    --data build/tests/integration/data --work /tmp/w matches_dcm2niix_ch2      # must FAIL
"""
import json
import os
import re
import subprocess
import sys

import nibabel as nib
import numpy as np


def shift_text_header(path):
    """NRRD 'space origin: (x,y,z)' or MetaImage 'Offset = x y z': x + 0.01."""
    with open(path, "rb") as f:
        raw = f.read()
    head, sep, rest = raw.partition(b"\n\n") if path.endswith((".nrrd", ".nhdr")) else \
        raw.partition(b"ElementDataFile")
    text = head.decode("latin-1")
    text = re.sub(r"(space origin: *\()([-0-9.e+]+)",
                  lambda m: m.group(1) + repr(float(m.group(2)) + 0.01), text)
    text = re.sub(r"(Offset = )([-0-9.e+]+)",
                  lambda m: m.group(1) + repr(float(m.group(2)) + 0.01), text)
    with open(path, "wb") as f:
        f.write(text.encode("latin-1") + sep + rest)


def damage_volume(path, mutation):
    if path.endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        if mutation != "shift_affine":
            raise SystemExit(f"mutant_cajal.py: {mutation} is for NIfTI outputs only")
        shift_text_header(path)
        return
    img = nib.load(path)
    data = np.asanyarray(img.dataobj).copy()
    affine = img.affine.copy()
    if mutation == "flip_x":
        data = data[::-1]
    elif mutation == "shift_affine":
        affine[0, 3] += 0.01
    elif mutation == "one_voxel":
        data[tuple(s // 2 for s in data.shape)] += 1
    nib.save(nib.Nifti1Image(data, affine, img.header), path)


def main():
    mutation = os.environ.get("MUTATION", "")
    args = sys.argv[1:]
    proc = subprocess.run([os.environ["REAL_CAJAL"]] + args, capture_output=True, text=True)
    stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    if "convert" in args:
        out = args[args.index("convert") + 2]
        if code == 0 and mutation in ("flip_x", "shift_affine", "one_voxel"):
            damage_volume(out, mutation)
        if code != 0 and mutation == "leave_file":
            try:
                with open(out, "w") as f:
                    f.write("partial")
            except OSError:
                pass
        if code != 0 and mutation == "exit0_on_error":
            code = 0
        if mutation == "hide_uids":
            stderr = re.sub(r"\d+(\.\d+){5,}", "<uid>", stderr)
    if "info" in args and "--json" in args and code == 0:
        info = json.loads(stdout)
        volume = info.get("volume") or {}
        if mutation == "info_orientation":
            for entry in info.get("series", []) + ([volume] if volume else []):
                entry["orientation"] = entry["orientation"][::-1]
        if mutation == "info_origin" and volume:
            volume["origin"][2] += 1.0
        stdout = json.dumps(info)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
