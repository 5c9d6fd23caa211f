"""Every transfer syntax of pydicom's MR_small*.dcm (plus JPEG lossless, deflate and lossy JPEG
made from MR_small.dcm by dcmtk) decodes through `cajal convert FILE out.nii` to the pixels of
the uncompressed MR_small.dcm as pydicom reads them, with the geometry of its header.

Lossless syntaxes must match exactly. Lossy JPEG has no single right answer against the
original, so it is compared with dcmtk's decoding (dcmdjpeg, libijg) of the same bit stream,
within 1 grey level: ISO 10918-2 lets compliant IDCTs differ by one unit after rounding, and
cajal's GDCM carries its own IJG build."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402

UNCOMPRESSED = "MR_small.dcm"
# name -> (folder: "pydicom" or "fixture", reference file, tolerance in grey levels)
FILES = {
    "MR_small.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_implicit.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_bigendian.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_expb.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_padded.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_RLE.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_jpeg_ls_lossless.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_jp2klossless.dcm": ("pydicom", UNCOMPRESSED, 0),
    "MR_small_jpeg_lossless_sv1.dcm": ("fixture", UNCOMPRESSED, 0),
    "MR_small_deflate.dcm": ("fixture", UNCOMPRESSED, 0),
    "MR_small_jpeg_baseline_lossy.dcm": ("fixture", "MR_small_jpeg_baseline_lossy_dcmdjpeg.dcm", 1),
    "MR_small_jpeg_extended_lossy.dcm": ("fixture", "MR_small_jpeg_extended_lossy_dcmdjpeg.dcm", 1),
}


def reference_nifti(dicom_path, out_path):
    """The single slice as pydicom decodes it, written as a NIfTI with the header's geometry
    (LPS -> RAS), voxel axis 0 along the rows (column index), axis 1 along the columns."""
    import nibabel as nib
    import numpy as np
    import pydicom
    ds = pydicom.dcmread(dicom_path)
    pixels = ds.pixel_array.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    dy, dx = (float(v) for v in ds.PixelSpacing)   # row spacing, column spacing
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dx
    lps[:3, 1] = col_dir * dy
    lps[:3, 2] = np.cross(row_dir, col_dir) * float(getattr(ds, "SliceThickness", 1) or 1)
    lps[:3, 3] = [float(v) for v in ds.ImagePositionPatient]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    nib.save(nib.Nifti1Image(pixels.T[:, :, None], ras), out_path)
    return pixels


def compare_slice(test_path, ref_path, what, tolerance):
    import numpy as np
    data, aff, _ = it.load_canonical(test_path)
    ref, ref_aff, _ = it.load_canonical(ref_path)
    it.require(data.shape == ref.shape, f"{what}: expected shape {ref.shape}, got {data.shape}")
    # One slice: its thickness is a convention (SliceThickness or 1), so the third column is
    # compared in direction only; the in-plane axes and the origin exactly (1e-3 mm).
    for col in (0, 1, 3):
        err = float(np.abs(aff[:3, col] - ref_aff[:3, col]).max())
        it.require(err <= 1e-3, f"{what}: affine column {col} differs by {err:g} mm\n"
                                f"expected\n{ref_aff}\ngot\n{aff}")
    n_got = aff[:3, 2] / np.linalg.norm(aff[:3, 2])
    n_ref = ref_aff[:3, 2] / np.linalg.norm(ref_aff[:3, 2])
    it.require(float(np.abs(n_got - n_ref).max()) <= 1e-6,
               f"{what}: slice normal {n_got} differs from {n_ref}")
    diff = np.abs(data.astype(np.float64) - ref.astype(np.float64))
    n_bad = int((diff > tolerance).sum())
    if n_bad:
        idx = tuple(int(i) for i in np.argwhere(diff > tolerance)[0])
        raise it.Fail(f"{what}: {n_bad} of {diff.size} pixels differ by more than {tolerance} "
                      f"(max {diff.max():g}); first at RAS index {idx}: expected {ref[idx]}, "
                      f"got {data[idx]}")
    print(f"ok: {what}: max pixel difference {diff.max():g} (tolerance {tolerance}), "
          f"mean {diff.mean():.4f}")


def make_case(name):
    folder_kind, ref_name, tolerance = FILES[name]

    def case(args):
        it.need_files(it.PYDICOM_TEST_FILES)
        ts_dir = os.path.join(args.data, "ts")
        src = os.path.join(it.PYDICOM_TEST_FILES if folder_kind == "pydicom" else ts_dir, name)
        if folder_kind == "fixture":
            it.need_fixture(src)
        else:
            it.need_files(src)
        ref_dir = it.PYDICOM_TEST_FILES if ref_name == UNCOMPRESSED else ts_dir
        ref_dicom = os.path.join(ref_dir, ref_name)
        it.need_fixture(ref_dicom)
        ref = os.path.join(args.work, "reference.nii")
        reference_nifti(ref_dicom, ref)
        out = os.path.join(args.work, "out.nii")
        proc = it.run_cajal(args.cajal, "convert", src, out)
        it.expect_exit(proc, 0, f"cajal convert {name}")
        it.require(os.path.isfile(out), f"cajal convert exited 0 but wrote nothing at {out}")
        compare_slice(out, ref, f"{name} vs {ref_name} (pydicom)", tolerance)
    return case


CASES = {name[:-len(".dcm")]: make_case(name) for name in FILES}

if __name__ == "__main__":
    it.main(CASES)
