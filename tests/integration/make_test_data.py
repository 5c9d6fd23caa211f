"""CTest fixture setup: makes the reference data the integration tests share, once, in the
build tree (never in the source tree).

  series/ch2/, series/kmeans/       DICOM series written by plastimatch from the Debian NIfTIs
  src/ct_hu.nii.gz, series/ct_hu/    KmeansTest mapped to HU (int16, negative values), its CT series
  src/oblique.nii.gz, series/oblique/ KmeansTest on an oblique grid, its series
  dcm2niix/NAME.nii.gz               dcm2niix's independent conversion of each series
  ts/MR_small_*.dcm                  more transfer syntaxes of pydicom's MR_small.dcm, made by
                                     dcmtk, and dcmtk's own decoding of the lossy ones
  manifest.json                      series UIDs and how long each step took

Usage: make_test_data.py OUT_DIR
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402


def timed(manifest, key, cmd):
    start = time.monotonic()
    it.run(cmd)
    manifest["seconds"][key] = round(time.monotonic() - start, 3)
    print(f"{key}: {manifest['seconds'][key]} s: {' '.join(cmd)}", flush=True)


def make(out):
    it.need_tools("plastimatch", "dcm2niix", "dcmcjpeg", "dcmdjpeg", "dcmconv")
    it.need_files(it.CH2_NII, it.KMEANS_NII, it.PYDICOM_TEST_FILES)
    import nibabel as nib  # (skip early if Debian's python is not the one running)
    import numpy as np
    import pydicom

    tmp = out + ".partial"
    it.fresh_dir(tmp)
    manifest = {"seconds": {}, "series_uid": {}}
    # A CT in HU (negative values: plastimatch then stores HU - min, RescaleIntercept = min).
    km = nib.load(it.KMEANS_NII)
    hu = (np.asanyarray(km.dataobj).astype(np.int16) * 4 - 1000).astype(np.int16)
    ct_hu = os.path.join(tmp, it.DERIVED_SOURCES["ct_hu"])
    os.makedirs(os.path.dirname(ct_hu))
    nib.save(nib.Nifti1Image(hu, km.affine), ct_hu)
    a, b = np.radians(17.0), np.radians(-11.0)
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    oblique_affine = km.affine.copy()
    oblique_affine[:3, :3] = rot_z @ rot_x @ km.affine[:3, :3]
    oblique_affine[:3, 3] = [10.5, -120.25, 30.75]
    oblique = os.path.join(tmp, it.DERIVED_SOURCES["oblique"])
    nib.save(nib.Nifti1Image(np.asanyarray(km.dataobj).astype(np.int16), oblique_affine), oblique)
    sources = dict(it.SOURCES, ct_hu=ct_hu, oblique=oblique)
    for name, src in sources.items():
        series_dir = os.path.join(tmp, "series", name)
        timed(manifest, f"plastimatch_{name}",
              ["plastimatch", "convert", "--input", src, "--output-dicom", series_dir])
        manifest["series_uid"][name] = it.series_uid(series_dir)
        d2n = os.path.join(tmp, "dcm2niix")
        os.makedirs(d2n, exist_ok=True)
        timed(manifest, f"dcm2niix_{name}",
              ["dcm2niix", "-z", "y", "-f", name, "-o", d2n, series_dir])
        # The reference must agree with its own source, or the comparison proves nothing.
        it.compare_volumes(os.path.join(d2n, name + ".nii.gz"), src,
                           f"reference check: dcm2niix({name} series) vs source {src}")
    uid = it.series_uid(os.path.join(tmp, "series", "ct_hu"))
    first = sorted(os.listdir(os.path.join(tmp, "series", "ct_hu")))[0]
    ds = pydicom.dcmread(os.path.join(tmp, "series", "ct_hu", first), stop_before_pixels=True)
    if float(ds.RescaleIntercept) == 0:
        raise it.Fail(f"expected plastimatch to store the HU series {uid} with a non-zero "
                      f"RescaleIntercept, got {ds.RescaleIntercept}: the rescale test needs one")

    ts = os.path.join(tmp, "ts")
    os.makedirs(ts)
    mr = os.path.join(it.PYDICOM_TEST_FILES, "MR_small.dcm")
    transcodes = {
        "MR_small_jpeg_lossless_sv1.dcm": ["dcmcjpeg", "+e1"],      # 1.2.840.10008.1.2.4.70
        "MR_small_deflate.dcm": ["dcmconv", "+td"],                 # 1.2.840.10008.1.2.1.99
        "MR_small_jpeg_baseline_lossy.dcm": ["dcmcjpeg", "+eb"],    # 1.2.840.10008.1.2.4.50
        "MR_small_jpeg_extended_lossy.dcm": ["dcmcjpeg", "+ee"],    # 1.2.840.10008.1.2.4.51
    }
    for name, tool in transcodes.items():
        dst = os.path.join(ts, name)
        it.run(tool + [mr, dst])
        if "lossy" in name:
            # dcmtk's (libijg) decoding of the very same bit stream: the reference for lossy files.
            it.run(["dcmdjpeg", dst, dst.replace(".dcm", "_dcmdjpeg.dcm")])

    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    try:
        make(os.path.abspath(sys.argv[1]))
    except it.Skip as e:
        print(f"SKIP: {e}")
        sys.exit(it.SKIP_CODE)
    except ImportError as e:
        print(f"SKIP: {e} (run with /usr/bin/python3)")
        sys.exit(it.SKIP_CODE)
    except it.Fail as e:
        print(f"FAIL: {e}")
        sys.exit(1)
