"""Shared helpers for cajal's integration tests (run with /usr/bin/python3: Debian's numpy,
nibabel and pydicom).

Every test script is called as `SCRIPT --cajal BIN --data DIR --work DIR CASE` and exits
0 (pass), 1 (fail) or 77 (skip: a reference tool is genuinely absent). Tools that are present but
misbehave make the test fail, never skip.
"""
import argparse
import os
import shutil
import subprocess
import sys
import traceback

SKIP_CODE = 77

CH2_NII = "/usr/share/mricron/templates/ch2.nii.gz"
KMEANS_NII = ("/usr/share/doc/insighttoolkit5-examples/examples/Data/"
              "KmeansTest_T1UCharRaw.nii.gz")
PYDICOM_TEST_FILES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"

# The two real volumes turned into DICOM series by the fixture, by case name.
SOURCES = {"ch2": CH2_NII, "kmeans": KMEANS_NII}
# Made by the fixture from KmeansTest: int16 HU = 4 * T1 - 1000 (negative values), written by
# plastimatch as a CT series with stored values shifted up and RescaleIntercept -1000.
# And KmeansTest's voxels on an oblique grid (rotated 17 degrees about x, -11 about z, origin off
# the grid): plastimatch writes non-axis-aligned ImageOrientationPatient.
DERIVED_SOURCES = {"ct_hu": "src/ct_hu.nii.gz", "oblique": "src/oblique.nii.gz"}


def source_nifti(data_dir, name):
    """The NIfTI a fixture series was written from."""
    if name in SOURCES:
        return SOURCES[name]
    return os.path.join(data_dir, DERIVED_SOURCES[name])


class Skip(Exception):
    pass


class Fail(AssertionError):
    pass


def require(cond, message):
    """An assertion that stays on under python -O and says what was expected and what came."""
    if not cond:
        raise Fail(message)


def need_tools(*names):
    """Skips the test when a reference tool is not installed at all (CAJAL_IT_REQUIRE_TOOLS=1
    turns that into a failure, for CI)."""
    missing = [n for n in names if shutil.which(n) is None]
    for path in (p for p in names if p.startswith("/")):
        if not os.path.exists(path):
            missing.append(path)
    if missing:
        msg = (f"reference tool(s) not installed: {', '.join(sorted(set(missing)))} "
               f"(tools/install_deps.sh --test installs them)")
        if os.environ.get("CAJAL_IT_REQUIRE_TOOLS") == "1":
            raise Fail(msg)
        raise Skip(msg)


def need_files(*paths):
    """Reference data shipped by Debian packages: absent package means skip, like a tool."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        msg = f"reference data not installed: {', '.join(missing)} (tools/install_deps.sh --test)"
        if os.environ.get("CAJAL_IT_REQUIRE_TOOLS") == "1":
            raise Fail(msg)
        raise Skip(msg)


def need_fixture(path):
    """Data the setup fixture should have made: its absence is a failure, not a skip."""
    if not os.path.exists(path):
        need_tools("plastimatch", "dcm2niix", "dcmcjpeg", "dcmdjpeg", "dcmconv")
        raise Fail(f"fixture data missing: {path} (did the integration_data_setup test run "
                   f"and pass?)")


def run(cmd, timeout=300, check=True):
    """Runs a reference tool; a failure of the tool fails the test."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise Fail(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                   f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
    return proc


def run_cajal(cajal, *args, timeout=300, env=None):
    """Runs cajal and logs the call, the exit code and both streams for CTest's output. `env`:
    variables set (or, with the value None, removed) for this call only."""
    cmd = [cajal, *[str(a) for a in args]]
    call_env = None
    if env:
        call_env = dict(os.environ)
        for key, value in env.items():
            if value is None:
                call_env.pop(key, None)
            else:
                call_env[key] = value
        print("$", " ".join(f"{k}={v}" for k, v in env.items()), " ".join(cmd), flush=True)
    else:
        print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=call_env)
    print(f"  exit {proc.returncode}")
    if proc.stdout.strip():
        print("  stdout:", proc.stdout.strip()[:3000].replace("\n", "\n          "))
    if proc.stderr.strip():
        print("  stderr:", proc.stderr.strip()[:3000].replace("\n", "\n          "))
    sys.stdout.flush()
    return proc


def expect_exit(proc, code, what):
    require(proc.returncode == code,
            f"{what}: expected exit code {code}, got {proc.returncode}")


def fresh_dir(path):
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(path)
    return path


def listing(folder):
    """Every path under folder (relative), to check that nothing (not even a temporary file)
    was left behind."""
    out = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(root, name), folder))
    return out


def load_canonical(path):
    """(voxels, affine, stored dtype) of a NIfTI after reorientation to the closest RAS."""
    import nibabel as nib
    import numpy as np
    img = nib.load(path)
    can = nib.as_closest_canonical(img)
    data = np.asanyarray(can.dataobj)
    return data, can.affine, img.get_data_dtype()


def compare_volumes(test_path, ref_path, what, atol_mm=1e-3, voxel_tol=0):
    """Same shape, same voxel values (exactly, or within voxel_tol) and same affine to atol_mm,
    both reoriented to RAS with nibabel."""
    import numpy as np
    data, aff, _ = load_canonical(test_path)
    ref, ref_aff, _ = load_canonical(ref_path)
    require(data.shape == ref.shape,
            f"{what}: expected shape {ref.shape} (RAS), got {data.shape}")
    max_aff = float(np.abs(aff - ref_aff).max())
    require(max_aff <= atol_mm,
            f"{what}: affines differ by {max_aff:.6g} mm (tolerance {atol_mm})\n"
            f"expected\n{ref_aff}\ngot\n{aff}")
    diff = np.abs(data.astype(np.float64) - ref.astype(np.float64))
    n_bad = int((diff > voxel_tol).sum())
    if n_bad:
        idx = tuple(int(i) for i in np.argwhere(diff > voxel_tol)[0])
        raise Fail(f"{what}: {n_bad} of {diff.size} voxels differ by more than {voxel_tol} "
                   f"(max {diff.max():g}); first at RAS index {idx}: expected "
                   f"{ref[idx]}, got {data[idx]}")
    print(f"ok: {what}: shape {data.shape}, affine within {max_aff:.2g} mm, "
          f"max voxel difference {diff.max():g}")


def series_uid(folder):
    import pydicom
    for name in sorted(os.listdir(folder)):
        if name.endswith(".dcm"):
            return str(pydicom.dcmread(os.path.join(folder, name),
                                       stop_before_pixels=True).SeriesInstanceUID)
    raise Fail(f"no .dcm file in {folder}")


def sorted_series_files(folder):
    """The series' files in slice order along the normal, as read by pydicom (independent of
    cajal), with their datasets (headers only)."""
    import numpy as np
    import pydicom
    items = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        pos = float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))
        items.append((pos, path))
    items.sort()
    return [p for _, p in items]


def main(test_cases):
    """Entry point: parses the common arguments and runs test_cases[CASE](args).
    `SCRIPT --list` prints the case names (CMake registers one CTest test per case)."""
    if sys.argv[1:] == ["--list"]:
        print("\n".join(test_cases))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--cajal", required=True)
    parser.add_argument("--data", required=True, help="fixture data made by make_test_data.py")
    parser.add_argument("--work", required=True, help="this test's scratch folder")
    parser.add_argument("case", choices=sorted(test_cases))
    args = parser.parse_args()
    try:
        if not os.access(args.cajal, os.X_OK):
            raise Fail(f"cajal binary not found or not executable: {args.cajal}")
        fresh_dir(args.work)
        test_cases[args.case](args)
    except Skip as e:
        print(f"SKIP: {e}")
        sys.exit(SKIP_CODE)
    except ImportError as e:
        msg = f"{e} (run the tests with /usr/bin/python3 and tools/install_deps.sh --test)"
        if os.environ.get("CAJAL_IT_REQUIRE_TOOLS") == "1":
            print(f"FAIL: {msg}")
            sys.exit(1)
        print(f"SKIP: {msg}")
        sys.exit(SKIP_CODE)
    except Fail as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print("FAIL: the test itself raised (see the traceback above)")
        sys.exit(1)
    print("PASS")
