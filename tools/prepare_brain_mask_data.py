#!/usr/bin/python3
"""Training and test cases of models/brain-mask from the real T1 volumes Debian ships.

Training: the Colin27 T1 (mricron-data's ch2.nii.gz), label = its brain-extracted version
(ch2bet.nii.gz) > 0 with holes filled, written as several variants of the one subject so the
network sees what other scanners do to it: stored orientation permuted and flipped, thick slices
(block averages along one axis), gamma curves and a smooth multiplicative bias field. The random
variants come from a fixed seed, so the folder is the same on every run.

Test (held out, never trained on): the ITK examples' KmeansTest T1 (a different head, 2 x 2 x 3 mm,
stored coronal), label = KmeansTest_T1RawSkullStrip.nii.gz > 0 with holes filled.

Usage: /usr/bin/python3 tools/prepare_brain_mask_data.py OUT
Writes OUT/train/<variant>/{t1.nii.gz,brain.nii.gz} and OUT/test/kmeans/{t1.nii.gz,brain.nii.gz}.
"""
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

MRICRON = "/usr/share/mricron/templates"
ITK_DATA = "/usr/share/doc/insighttoolkit5-examples/examples/Data"


def brain_label(values):
    mask = np.asarray(values) > 0
    filled = ndimage.binary_fill_holes(mask)
    return filled.astype(np.uint8)


def save_volume(path, values, affine):
    volume = nib.Nifti1Image(values, affine)
    volume.set_qform(affine, code=1)
    volume.set_sform(affine, code=1)
    nib.save(volume, path)


def save_case(folder, image, label, affine):
    os.makedirs(folder, exist_ok=True)
    save_volume(os.path.join(folder, "t1.nii.gz"), image, affine)
    save_volume(os.path.join(folder, "brain.nii.gz"), label.astype(np.uint8), affine)


def reorient(image, label, affine, order):
    """Axes permuted/flipped as `order` (nibabel orientation array) says, affine kept exact."""
    current = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(current, order)
    image2 = nib.orientations.apply_orientation(image, transform)
    label2 = nib.orientations.apply_orientation(label, transform)
    affine2 = affine @ nib.orientations.inv_ornt_aff(transform, image.shape)
    return np.ascontiguousarray(image2), np.ascontiguousarray(label2), affine2


def thick_slices(image, label, affine, axis, factor):
    """Block averages of `factor` slices along `axis` (partial volume as a thick-slice scanner
    makes it); the label is the majority of the block; the affine scaled and shifted to the
    block centres."""
    n = image.shape[axis] // factor * factor
    cut = [slice(None)] * 3
    cut[axis] = slice(0, n)
    img = image[tuple(cut)].astype(np.float32)
    lab = label[tuple(cut)].astype(np.float32)
    shape = list(img.shape)
    shape[axis] = n // factor
    shape.insert(axis + 1, factor)
    img = img.reshape(shape).mean(axis=axis + 1)
    lab = (lab.reshape(shape).mean(axis=axis + 1) >= 0.5).astype(np.uint8)
    scale = np.eye(4)
    scale[axis, axis] = factor
    scale[axis, 3] = (factor - 1) / 2.0
    return img, lab, affine @ scale


def bias_field(shape, rng, strength):
    """A smooth multiplicative field, 1 +- strength, from a coarse random grid."""
    coarse = rng.uniform(-1.0, 1.0, size=(4, 4, 4))
    zoom = [s / 4.0 for s in shape]
    field = ndimage.zoom(coarse, zoom, order=3)[: shape[0], : shape[1], : shape[2]]
    field = field / max(1e-6, np.abs(field).max())
    return (1.0 + strength * field).astype(np.float32)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: prepare_brain_mask_data.py OUT")
    out = sys.argv[1]
    rng = np.random.default_rng(20261127)

    ch2 = nib.load(os.path.join(MRICRON, "ch2.nii.gz"))
    bet = nib.load(os.path.join(MRICRON, "ch2bet.nii.gz"))
    if ch2.shape != bet.shape or not np.allclose(ch2.affine, bet.affine):
        sys.exit("ch2 and ch2bet are not on the same grid")
    image = np.asarray(ch2.dataobj).astype(np.float32)
    label = brain_label(bet.dataobj)
    affine = ch2.affine
    train = os.path.join(out, "train")

    save_case(os.path.join(train, "ch2"), image, label, affine)
    # Stored coronal (L S A, as the held-out scan) and sagittal (A S R), 1 mm.
    lsa = nib.orientations.axcodes2ornt(("L", "S", "A"))
    asr = nib.orientations.axcodes2ornt(("A", "S", "R"))
    img, lab, aff = reorient(image, label, affine, lsa)
    save_case(os.path.join(train, "ch2_coronal"), img, lab, aff)
    img, lab, aff = reorient(image, label, affine, asr)
    save_case(os.path.join(train, "ch2_sagittal"), img, lab, aff)
    # Thick slices: 3 mm axial; 3 mm coronal (the held-out scan's slice direction); 5 mm axial.
    img, lab, aff = thick_slices(image, label, affine, 2, 3)
    save_case(os.path.join(train, "ch2_axial3mm"), img, lab, aff)
    img, lab, aff = reorient(image, label, affine, lsa)
    img, lab, aff = thick_slices(img, lab, aff, 2, 3)
    save_case(os.path.join(train, "ch2_coronal3mm"), img, lab, aff)
    img, lab, aff = thick_slices(image, label, affine, 2, 5)
    save_case(os.path.join(train, "ch2_axial5mm"), img, lab, aff)
    # Contrast: gamma curves on the [0, 1] range and bias fields, the scale of the values changed too.
    top = float(image.max())
    for name, gamma, strength, scale in (("ch2_gamma06", 0.6, 0.0, 1000.0),
                                         ("ch2_gamma15", 1.5, 0.0, 4095.0),
                                         ("ch2_bias", 1.0, 0.3, 1.0),
                                         ("ch2_bias_gamma08", 0.8, 0.25, 300.0)):
        img = (image / top) ** gamma
        if strength > 0:
            img = img * bias_field(image.shape, rng, strength)
        save_case(os.path.join(train, name), (img * scale).astype(np.float32), label, affine)

    t1 = nib.load(os.path.join(ITK_DATA, "KmeansTest_T1UCharRaw.nii.gz"))
    strip = nib.load(os.path.join(ITK_DATA, "KmeansTest_T1RawSkullStrip.nii.gz"))
    if t1.shape != strip.shape or not np.allclose(t1.affine, strip.affine):
        sys.exit("KmeansTest T1 and skull strip are not on the same grid")
    save_case(os.path.join(out, "test", "kmeans"), np.asarray(t1.dataobj).astype(np.float32),
              brain_label(strip.dataobj), t1.affine)
    print("wrote", out)


if __name__ == "__main__":
    main()
