#!/usr/bin/python3
"""Writes a ROI mask of COUNT small labelled cubes inside the body of a CT, on the CT's grid.

    make_rois.py CT.nii.gz MASK.nii.gz [--count 1000] [--cube 3]

Cube k (k = 1 .. COUNT) holds the value k (int16), so `cajal classify --roi MASK` gives one
region per cube, `<case>/lesion_<k>`. The cubes sit on a regular voxel lattice, the coarsest one
with at least COUNT points whose cube and a one-voxel shell around it are all body (> -500 HU),
and COUNT of those points are taken evenly spread in raster order; neighbouring cubes never touch,
so `--label` would find the same regions as connected components.
"""
import argparse

import nibabel as nib
import numpy as np


def summed_volume(body):
    """table[i, j, k] = number of body voxels in body[:i, :j, :k]."""
    table = np.zeros(tuple(np.array(body.shape) + 1), dtype=np.int64)
    table[1:, 1:, 1:] = body.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    return table


def lattice_points(table, step, cube):
    """Corner indices (i, j, k) of cubes on a lattice of `step` voxels whose cube and a one-voxel
    shell around it are all body (counted from the summed-volume table)."""
    shell = cube + 2
    starts = [np.arange(1, n - shell + 1, step) for n in np.array(table.shape) - 1]
    i, j, k = np.meshgrid(*starts, indexing="ij")
    i, j, k = i.ravel() - 1, j.ravel() - 1, k.ravel() - 1
    a, b, c = i + shell, j + shell, k + shell
    total = (table[a, b, c] - table[i, b, c] - table[a, j, c] - table[a, b, k] + table[i, j, c] +
             table[i, b, k] + table[a, j, k] - table[i, j, k])
    keep = total == shell ** 3
    return np.stack([i[keep] + 1, j[keep] + 1, k[keep] + 1], axis=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ct")
    parser.add_argument("mask")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--cube", type=int, default=3, help="cube side in voxels")
    args = parser.parse_args()
    if not 1 <= args.count <= 32767:
        parser.error("--count: 1 to 32767 (int16 values)")

    ct = nib.load(args.ct)
    body = np.asarray(ct.dataobj) > -500
    table = summed_volume(body)
    points = None
    for step in range(32, args.cube + 1, -1):
        points = lattice_points(table, step, args.cube)
        if len(points) >= args.count:
            break
    if points is None or len(points) < args.count:
        raise SystemExit(f"make_rois.py: only {0 if points is None else len(points)} cubes of "
                         f"{args.cube} voxels fit in the body of {args.ct}; need {args.count}")
    chosen = points[np.round(np.linspace(0, len(points) - 1, args.count)).astype(int)]
    mask = np.zeros(body.shape, dtype=np.int16)
    for value, (i, j, k) in enumerate(chosen, start=1):
        mask[i:i + args.cube, j:j + args.cube, k:k + args.cube] = value
    header = ct.header.copy()
    header.set_data_dtype(np.int16)
    header.set_slope_inter(1, 0)
    image = nib.Nifti1Image(mask, ct.affine, header)
    image.set_qform(ct.get_qform(), int(ct.header["qform_code"]))
    image.set_sform(ct.get_sform(), int(ct.header["sform_code"]))
    nib.save(image, args.mask)
    print(f"{args.mask}: {args.count} cubes of {args.cube}^3 voxels on a {step}-voxel lattice "
          f"({len(points)} places in the body)")


if __name__ == "__main__":
    main()
