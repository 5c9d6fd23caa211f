#!/usr/bin/python3
"""Makes sample_data/: a small synthetic chest CT, as a NIfTI (ct.nii.gz) and as a DICOM series
written from it by plastimatch (ct/). Byte-identical on every run; see sample_data/README.md.

Run with Debian's python (numpy, nibabel, pydicom):
  /usr/bin/python3 tools/make_sample_data.py [OUT_DIR]
Needs plastimatch (tools/install_deps.sh --test). OUT_DIR defaults to sample_data/ in the repo.

Geometry: 128 x 128 x 40 voxels, 2.5 x 2.5 x 5 mm, stored in DICOM's LPS order (axial slices,
ImageOrientationPatient 1\\0\\0\\0\\1\\0), centred on the origin. Tissues in HU: air -1000, a
body ellipse of soft tissue (0) with a subcutaneous fat rim (-100), two lungs (-800), a heart
(+40) and a vertebral column (+700) with a marrow core (+250), plus Gaussian noise of 12 HU
smoothed over 3 voxels in-plane (CT noise is spatially correlated), clipped to [-1024, 3071].
"""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import nibabel as nib
import numpy as np

SEED = 20261126
SIZE = (128, 128, 40)            # x (columns), y (rows), z (slices)
SPACING = (2.5, 2.5, 5.0)        # mm


def stable_uid(name):
    """A UID that stays the same across runs: 2.25.<UUID as integer>, the form for made-up
    identifiers, from a UUID derived from the name."""
    return "2.25.%d" % uuid.uuid5(uuid.NAMESPACE_URL, "cajal/sample_data/ct/" + name).int


SERIES_UID = stable_uid("series")
STUDY_UID = stable_uid("study")
PATIENT_ID = "CAJAL-SAMPLE-001"
STUDY_DESCRIPTION = "cajal sample data"


def ellipsoid(x, y, z, centre, radii):
    return (((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 +
            ((z - centre[2]) / radii[2]) ** 2) <= 1.0


def make_volume():
    """int16 HU on a grid indexed [x, y, z] in LPS millimetres (x to the patient's left,
    y to the back, z to the head)."""
    rng = np.random.default_rng(SEED)
    nx, ny, nz = SIZE
    sx, sy, sz = SPACING
    x = (np.arange(nx) - (nx - 1) / 2) * sx
    y = (np.arange(ny) - (ny - 1) / 2) * sy
    z = (np.arange(nz) - (nz - 1) / 2) * sz
    x, y, z = np.meshgrid(x, y, z, indexing="ij")

    hu = np.full(SIZE, -1000.0)
    inf = np.inf
    body = ellipsoid(x, y, z, (0, 0, 0), (150, 105, inf))
    inner = ellipsoid(x, y, z, (0, 0, 0), (138, 94, inf))
    hu[body] = -100.0                       # subcutaneous fat
    hu[inner] = 0.0                         # soft tissue
    for side in (-1, 1):                    # right (-x) and left (+x) lungs
        lung = ellipsoid(x, y, z, (side * 62, 5, 10), (45, 62, 95))
        hu[lung & inner] = -800.0
    heart = ellipsoid(x, y, z, (18, -28, -5), (48, 38, 45))   # left of centre, anterior
    hu[heart] = 40.0
    spine = ellipsoid(x, y, z, (0, 68, 0), (17, 15, inf))     # posterior
    hu[spine] = 700.0
    marrow = ellipsoid(x, y, z, (0, 68, 0), (10, 8, inf))
    hu[marrow] = 250.0

    noise = rng.normal(0.0, 12.0 * np.sqrt(3.0), SIZE)        # after smoothing: ~12 HU
    kernel = np.ones(3) / 3.0
    noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, noise)
    noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 1, noise)
    hu = hu + noise
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def affine_ras():
    """LPS storage: voxel axes point to L, P, S; NIfTI wants RAS, so x and y are negated."""
    sx, sy, sz = SPACING
    nx, ny, nz = SIZE
    origin_lps = np.array([-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz])
    lps = np.diag([sx, sy, sz, 1.0])
    lps[:3, 3] = origin_lps
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def make_reproducible(folder):
    """plastimatch makes new study, frame-of-reference and instance UIDs and stamps the time on
    every run; replace them with stable ones so that regenerating gives byte-identical files."""
    import pydicom
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        ds = pydicom.dcmread(path)
        sop_uid = stable_uid("instance/" + name)
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.StudyInstanceUID = STUDY_UID
        ds.FrameOfReferenceUID = stable_uid("frame-of-reference")
        ds.StudyDescription = STUDY_DESCRIPTION   # plastimatch 1.9.4 drops --study-description
        for tag in ("InstanceCreationDate", "StudyDate", "SeriesDate", "ContentDate"):
            if tag in ds:
                setattr(ds, tag, "20261126")
        for tag in ("InstanceCreationTime", "StudyTime", "SeriesTime", "ContentTime"):
            if tag in ds:
                setattr(ds, tag, "120000")
        ds.save_as(path)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(repo, "sample_data")
    if shutil.which("plastimatch") is None:
        sys.exit("make_sample_data.py: plastimatch not found (tools/install_deps.sh --test)")
    os.makedirs(out, exist_ok=True)

    img = nib.Nifti1Image(make_volume(), affine_ras())
    img.header.set_xyzt_units("mm")
    img.set_sform(img.affine, code=1)   # scanner
    img.set_qform(img.affine, code=1)
    nii = os.path.join(out, "ct.nii.gz")
    nib.save(img, nii)

    dicom = os.path.join(out, "ct")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        subprocess.run(
            ["plastimatch", "convert", "--input", nii, "--output-dicom", tmp,
             "--modality", "CT", "--patient-id", PATIENT_ID,
             "--patient-name", "Sample^Synthetic", "--series-description",
             "Synthetic chest CT (cajal sample)",
             "--series-number", "2", "--series-uid", SERIES_UID,
             "--filenames-without-uids"],
            check=True, stdout=subprocess.DEVNULL)
        make_reproducible(tmp)
        if os.path.exists(dicom):
            shutil.rmtree(dicom)
        shutil.copytree(tmp, dicom)
    count = len(os.listdir(dicom))
    print(f"wrote {nii} and {dicom}/ ({count} files), series {SERIES_UID}")


if __name__ == "__main__":
    main()
