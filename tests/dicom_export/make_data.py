"""Makes the reference data of the DICOM export tests (run by Debian's /usr/bin/python3).

    make_data.py OUT_DIR

OUT_DIR/synthetic/labels.nii.gz   label map (RAS-stored NIfTI) with names in names.txt
OUT_DIR/synthetic/ct              CT-like series, files and InstanceNumber ascending in z
OUT_DIR/synthetic/ct_reversed     the same slices stored in reverse order (file names and
                                  InstanceNumber descending in z)
OUT_DIR/synthetic/ct_mirrored     the same voxels with a negative column direction cosine
                                  (ImageOrientationPatient 1\\0\\0\\0\\-1\\0): rows run
                                  posterior to anterior, the normal points down
OUT_DIR/ch2/dicom                 plastimatch-made MR series of Colin27 (mricron-data)
OUT_DIR/ch2/names.txt             a few AAL regions (the label map is aal.nii.gz itself)

Exit 77 when a tool or data package is not installed.
"""
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CH2 = "/usr/share/mricron/templates/ch2.nii.gz"
AAL = "/usr/share/mricron/templates/aal.nii.gz"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# Synthetic grid: LPS, identity direction, voxel (i, j, k) at ORIGIN + (i*SX, j*SY, k*SZ).
NI, NJ, NK = 48, 40, 16
SX, SY, SZ = 0.9, 1.1, 2.5
ORIGIN = np.array([-20.0, -15.0, 30.0])

# label: name. Kidney_R (5) is named but has no voxel.
SYNTHETIC_NAMES = {1: "External", 2: "Lung_L", 3: "Heart", 4: "SpinalCord", 5: "Kidney_R",
                   6: "GTV_islands"}
CH2_NAMES = {1: "Precentral_L", 2: "Precentral_R", 37: "Hippocampus_L", 41: "Amygdala_L",
             71: "Caudate_L", 77: "Thalamus_L", 108: "Cerebelum_10_R"}


def synthetic_labels():
    """[i, j, k] label map: body ellipse, a lung blob, a ring-shaped heart (hole), a one-slice
    spinal cord, and a structure of two islands per slice."""
    i, j = np.meshgrid(np.arange(NI), np.arange(NJ), indexing="ij")
    labels = np.zeros((NI, NJ, NK), np.uint8)
    for k in range(1, NK - 1):
        body = ((i - 24) / 21.0) ** 2 + ((j - 20) / 17.0) ** 2 <= 1
        labels[..., k][body] = 1
        if 3 <= k <= 11:
            labels[..., k][((i - 12) / 6.0) ** 2 + ((j - 18) / 9.0) ** 2 <= 1] = 2
        if 4 <= k <= 9:
            r2 = (i - 30) ** 2 + (j - 20) ** 2
            labels[..., k][(r2 <= 64) & (r2 > 16)] = 3
        if k == 7:
            labels[..., k][(i - 24) ** 2 + (j - 33) ** 2 <= 4] = 4
        if 5 <= k <= 8:
            labels[..., k][(abs(i - 38) <= 1) & (abs(j - 8) <= 2)] = 6
            labels[..., k][(abs(i - 42) <= 1) & (abs(j - 30) <= 1)] = 6
    return labels


def ras_affine():
    """NIfTI affine (RAS) of the synthetic grid stored [i, j, k]."""
    return np.array([[-SX, 0, 0, -ORIGIN[0]], [0, -SY, 0, -ORIGIN[1]], [0, 0, SZ, ORIGIN[2]],
                     [0, 0, 0, 1]])


def hu_image(labels):
    hu = np.full(labels.shape, -1000, np.int16)
    hu[labels > 0] = 40
    hu[labels == 1] = 0
    hu[labels == 2] = -800
    return hu


def write_series(folder, hu, mirrored, reversed_storage, study):
    """One file per slice. `hu` is [i, j, k] on the synthetic grid."""
    os.makedirs(folder)
    series_uid = generate_uid()
    for k in range(NK):
        z = ORIGIN[2] + k * SZ
        pixels = hu[:, :, k].T  # [row j, column i]
        position = [ORIGIN[0], ORIGIN[1], z]
        orientation = [1, 0, 0, 0, 1, 0]
        if mirrored:
            pixels = pixels[::-1, :]
            position = [ORIGIN[0], ORIGIN[1] + (NJ - 1) * SY, z]
            orientation = [1, 0, 0, 0, -1, 0]
        number = NK - k if reversed_storage else k + 1
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyDate, ds.StudyTime = "20260101", "101010"
        ds.AccessionNumber = "ACC42"
        ds.Modality = "CT"
        ds.Manufacturer = "cajal tests"
        ds.ReferringPhysicianName = "Doe^Jane"
        ds.StudyDescription = "synthetic thorax"
        ds.SeriesDescription = "synthetic CT"
        ds.PatientName = "Phantom^Synthetic"
        ds.PatientID = "SYN001"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study["study_uid"]
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.InstanceNumber = number
        ds.FrameOfReferenceUID = study["frame_uid"]
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [f"{v:.4f}" for v in position]
        ds.ImageOrientationPatient = orientation
        ds.SliceThickness = SZ
        ds.PixelSpacing = [SY, SX]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = NJ, NI
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.KVP = 120
        ds.PatientPosition = "HFS"
        ds.PixelData = (np.ascontiguousarray(pixels) + 1024).astype("<i2").tobytes()
        ds.save_as(os.path.join(folder, f"IM{number:04d}.dcm"), write_like_original=False)


def write_names(path, names):
    with open(path, "w") as out:
        for label, name in names.items():
            out.write(f"{label} {name}\n")


def make_synthetic(out):
    labels = synthetic_labels()
    os.makedirs(out)
    nib.save(nib.Nifti1Image(labels, ras_affine()), os.path.join(out, "labels.nii.gz"))
    write_names(os.path.join(out, "names.txt"), SYNTHETIC_NAMES)
    hu = hu_image(labels)
    for name, mirrored, reversed_storage in (("ct", False, False), ("ct_reversed", False, True),
                                             ("ct_mirrored", True, False)):
        study = {"study_uid": generate_uid(), "frame_uid": generate_uid()}
        write_series(os.path.join(out, name), hu, mirrored, reversed_storage, study)


def make_ch2(out):
    os.makedirs(out)
    subprocess.run(["plastimatch", "convert", "--input", CH2, "--output-dicom",
                    os.path.join(out, "dicom"), "--modality", "MR", "--patient-id", "CH2",
                    "--patient-name", "Colin^27"], check=True, stdout=subprocess.DEVNULL)
    write_names(os.path.join(out, "names.txt"), CH2_NAMES)


def main():
    out = sys.argv[1]
    missing = [t for t in ("plastimatch", "dciodvfy") if shutil.which(t) is None]
    missing += [f for f in (CH2, AAL) if not os.path.exists(f)]
    if missing:
        print(f"not installed: {', '.join(missing)}", file=sys.stderr)
        return 1 if os.environ.get("CAJAL_IT_REQUIRE_TOOLS") == "1" else 77
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    make_synthetic(os.path.join(out, "synthetic"))
    make_ch2(os.path.join(out, "ch2"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
