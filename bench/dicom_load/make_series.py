"""Writes a synthetic 512 x 512 x 300 CT volume (int16 HU, 0.8 x 0.8 x 1 mm, LPS) as NIfTI for
run.sh, which turns it into a DICOM series with plastimatch. Deterministic (fixed seed).
Usage: /usr/bin/python3 make_series.py OUT.nii"""
import sys

import nibabel as nib
import numpy as np

NX, NY, NZ = 512, 512, 300
SX, SY, SZ = 0.8, 0.8, 1.0


def main(out):
    rng = np.random.default_rng(300)
    x = (np.arange(NX) - (NX - 1) / 2) * SX
    y = (np.arange(NY) - (NY - 1) / 2) * SY
    xx, yy = np.meshgrid(x, y, indexing="ij")
    slice_hu = np.full((NX, NY), -1000.0)
    slice_hu[(xx / 170) ** 2 + (yy / 120) ** 2 <= 1] = 0.0                  # body
    for side in (-1, 1):
        slice_hu[((xx - side * 70) / 50) ** 2 + ((yy - 5) / 70) ** 2 <= 1] = -800.0   # lungs
    slice_hu[(xx / 18) ** 2 + ((yy - 80) / 16) ** 2 <= 1] = 700.0           # spine
    vol = np.empty((NX, NY, NZ), dtype=np.int16)
    for k in range(NZ):   # slice by slice: keeps memory near the volume's 157 MB
        noisy = slice_hu + rng.normal(0.0, 15.0, (NX, NY))
        vol[:, :, k] = np.clip(np.rint(noisy), -1024, 3071).astype(np.int16)
    lps = np.diag([SX, SY, SZ, 1.0])
    lps[:3, 3] = [-(NX - 1) / 2 * SX, -(NY - 1) / 2 * SY, -(NZ - 1) / 2 * SZ]
    img = nib.Nifti1Image(vol, np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    nib.save(img, out)


if __name__ == "__main__":
    main(sys.argv[1])
