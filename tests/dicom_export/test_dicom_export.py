"""`cajal labels-to-dicom` judged by tools no one here wrote (run by Debian's /usr/bin/python3).

    test_dicom_export.py --cajal BIN --data DIR --work DIR CASE
    test_dicom_export.py --list

Each series case runs cajal on a label map and a reference series, then checks:
- dciodvfy: no "Error -" line for the RTSTRUCT or the SEG;
- RTSTRUCT: every contour lies on the plane of the image it references, every DS value is at
  most 16 characters, and rasterising the contours (even-odd, contours OR'd) at the voxel
  centres of each referenced image gives exactly the expected mask; patient/study attributes
  are the source's;
- plastimatch: `plastimatch convert --input rtstruct.dcm --referenced-ct DIR` gives back masks
  with Dice >= 0.98 for every structure larger than 1 mL;
- SEG read with pydicom, frames mapped to slices by ReferencedSOPInstanceUID (and their
  ImagePositionPatient checked against that slice): exactly the expected masks;
- dcentvfy: patient, study and frame of reference agree across the new files and the source;
- RTSTRUCT, SEG and cajal's JSON report agree on structures, contour counts, slices and UIDs;
- empty structures are left out of both files, listed in the report and warned about.
The expected masks come from the label map NIfTI and the reference images' own headers,
independently of cajal. Exit 0 pass, 1 fail, 77 skip (tool not installed).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import traceback

import nibabel as nib
import numpy as np
import pydicom

SKIP = 77
SYNTHETIC_SERIES = {"SyntheticCt": "ct", "SyntheticCtStoredInReverseOrder": "ct_reversed",
                    "SyntheticCtWithNegativeColumnCosine": "ct_mirrored"}
CASES = [f"{name}_ValidAndRoundTripsExactly" for name in SYNTHETIC_SERIES] + [
    "Colin27Aal_ValidAndRoundTripsExactly", "LabelMapOnAnotherGrid_IsRefused",
    "BrokenFiles_AreCaughtByTheChecks"]
DICE_MIN = 0.98
SYNTHETIC_EMPTY = ["Kidney_R"]


class Fail(AssertionError):
    pass


def require(cond, message):
    if not cond:
        raise Fail(message)


# ---- reference series and expected masks --------------------------------------------------

def read_series(folder):
    """Source images keyed by SOP Instance UID: position, row/column cosines, spacing, shape."""
    images = {}
    for path in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
        if not os.path.isfile(path):
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.array(ds.ImageOrientationPatient, float)
        images[ds.SOPInstanceUID] = {
            "path": path, "ds": ds, "ipp": np.array(ds.ImagePositionPatient, float),
            "row": iop[:3], "col": iop[3:], "normal": np.cross(iop[:3], iop[3:]),
            "spacing": np.array(ds.PixelSpacing, float),  # between rows, between columns
            "shape": (int(ds.Rows), int(ds.Columns)), "class": ds.SOPClassUID}
    return images


def expected_slice_masks(labels_path, images, label):
    """[rows, columns] mask of `label` on each source image, sampled from the label map at
    the image's pixel centres (which must fall on label-map voxel centres)."""
    img = nib.load(labels_path)
    data = np.asarray(img.dataobj)
    to_index = np.linalg.inv(img.affine)
    masks = {}
    for uid, im in images.items():
        rows, cols = im["shape"]
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        lps = (im["ipp"][None, None, :] + c[..., None] * im["spacing"][1] * im["row"] +
               r[..., None] * im["spacing"][0] * im["col"])
        ras = lps * np.array([-1, -1, 1])
        index = ras @ to_index[:3, :3].T + to_index[:3, 3]
        rounded = np.rint(index)
        require(np.abs(index - rounded).max() < 1e-2,
                f"test data: image {uid} is not on the label map grid")
        rounded = rounded.astype(int)
        masks[uid] = data[rounded[..., 0], rounded[..., 1], rounded[..., 2]] == label
    return masks


# ---- RTSTRUCT ------------------------------------------------------------------------------

def rasterize(points_ij, shape):
    """Even-odd fill of one polygon at the pixel centres; points as (column, row)."""
    rows, cols = shape
    mask = np.zeros(shape, bool)
    x, y = points_ij[:, 0], points_ij[:, 1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    for r in range(rows):
        crossing = (y <= r) != (y2 <= r)
        xs = np.sort(x[crossing] + (r - y[crossing]) * (x2[crossing] - x[crossing]) /
                     (y2[crossing] - y[crossing]))
        for a, b in zip(xs[0::2], xs[1::2]):
            cs = np.arange(cols)
            mask[r, (cs > a) & (cs < b)] = True
    return mask


def raw_ds_values(item, keyword):
    raw = item.get_item(keyword)
    value = raw.value if isinstance(raw.value, bytes) else str(raw.value).encode()
    return value.decode().strip().split("\\")


def check_rtstruct(path, images, expected, report):
    ds = pydicom.dcmread(path)
    require(ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT SOP class")
    rois = {int(r.ROINumber): r.ROIName for r in ds.StructureSetROISequence}
    obs = {int(o.ReferencedROINumber): o.RTROIInterpretedType for o in
           ds.RTROIObservationsSequence}
    require(set(obs.values()) == {"ORGAN"} and set(obs) == set(rois),
            f"RT ROI Observations: expected ORGAN for every ROI, got {obs}")
    require(ds.StructureSetLabel and ds.StructureSetDate and ds.StructureSetTime,
            "structure set label, date and time")
    any_uid = next(iter(images.values()))["ds"]
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate",
                    "PatientSex", "StudyDate", "StudyID", "AccessionNumber"):
        require(str(ds.get(keyword, "")) == str(any_uid.get(keyword, "")),
                f"RTSTRUCT {keyword}: expected {any_uid.get(keyword)!r}, got {ds.get(keyword)!r}")
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    require(frame.FrameOfReferenceUID == any_uid.FrameOfReferenceUID, "frame of reference")
    study = frame.RTReferencedStudySequence[0]
    require(study.ReferencedSOPInstanceUID == any_uid.StudyInstanceUID, "referenced study")
    series = study.RTReferencedSeriesSequence[0]
    require(series.SeriesInstanceUID == any_uid.SeriesInstanceUID, "referenced series")
    listed = {c.ReferencedSOPInstanceUID for c in series.ContourImageSequence}
    require(listed == set(images), "Contour Image Sequence of the referenced series: all images")
    found = {}
    for roi_contour in ds.ROIContourSequence:
        number = int(roi_contour.ReferencedROINumber)
        name = rois[number]
        require(len(roi_contour.ROIDisplayColor) == 3, f"{name}: ROIDisplayColor")
        masks = {uid: np.zeros(im["shape"], bool) for uid, im in images.items()}
        count = 0
        for contour in roi_contour.ContourSequence:
            require(contour.ContourGeometricType == "CLOSED_PLANAR", f"{name}: geometric type")
            texts = raw_ds_values(contour, "ContourData")
            too_long = [t for t in texts if len(t) > 16]
            require(not too_long, f"{name}: DS values longer than 16 characters: {too_long[:3]}")
            points = np.array([float(t) for t in texts]).reshape(-1, 3)
            require(len(points) == int(contour.NumberOfContourPoints), f"{name}: point count")
            uid = contour.ContourImageSequence[0].ReferencedSOPInstanceUID
            require(uid in images, f"{name}: contour references {uid}, not in the series")
            im = images[uid]
            offset = points - im["ipp"]
            off_plane = np.abs(offset @ im["normal"]).max()
            require(off_plane < 1e-3, f"{name}: contour {off_plane} mm off its image's plane")
            ij = np.stack([offset @ im["row"] / im["spacing"][1],
                           offset @ im["col"] / im["spacing"][0]], axis=1)
            masks[uid] |= rasterize(ij, im["shape"])
            count += 1
        for uid, mask in masks.items():
            wrong = int((mask != expected[name][uid]).sum())
            require(wrong == 0, f"{name}: rasterised contours differ from the label map in "
                                f"{wrong} pixels of image {uid}")
        found[name] = {"contours": count, "slices": {u for u, m in masks.items() if m.any()},
                       "roi_number": number}
    return ds, found


def plastimatch_dice(rtstruct, dicom_dir, expected, images, work):
    out = os.path.join(work, "plastimatch")
    subprocess.run(["plastimatch", "convert", "--input", rtstruct, "--referenced-ct", dicom_dir,
                    "--output-prefix", out, "--prefix-format", "nii.gz"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dice = {}
    voxel_ml = None
    for name, per_slice in expected.items():
        path = os.path.join(out, name + ".nii.gz")
        require(os.path.exists(path), f"plastimatch wrote no mask for {name}")
        img = nib.load(path)
        data = np.asarray(img.dataobj) > 0
        to_index = np.linalg.inv(img.affine)
        intersection = ours = theirs = 0
        for uid, mask in per_slice.items():
            im = images[uid]
            rows, cols = im["shape"]
            r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            lps = (im["ipp"] + c[..., None] * im["spacing"][1] * im["row"] +
                   r[..., None] * im["spacing"][0] * im["col"])
            index = np.rint((lps * [-1, -1, 1]) @ to_index[:3, :3].T + to_index[:3, 3]).astype(int)
            back = data[index[..., 0], index[..., 1], index[..., 2]]
            intersection += int((back & mask).sum())
            ours += int(mask.sum())
            theirs += int(back.sum())
            voxel_ml = im["spacing"][0] * im["spacing"][1] * abs(
                float(np.diag(np.linalg.inv(to_index))[2])) / 1000.0
        dice[name] = (2.0 * intersection / (ours + theirs) if ours + theirs else 1.0,
                      ours * voxel_ml)
    return dice


# ---- SEG -----------------------------------------------------------------------------------

def check_seg(path, images, expected):
    ds = pydicom.dcmread(path)
    require(ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4", "SEG SOP class")
    require(ds.SegmentationType == "BINARY", "SegmentationType")
    segments = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    for s in segments.values():
        require("RecommendedDisplayCIELabValue" in s, f"segment {s.SegmentLabel}: colour")
        require(s.SegmentedPropertyTypeCodeSequence[0].CodeValue, "property type code")
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    masks = {s.SegmentLabel: {uid: np.zeros(im["shape"], bool) for uid, im in images.items()}
             for s in segments.values()}
    for f, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        require(uid in images, f"frame {f + 1} references {uid}, not in the series")
        ipp = np.array(group.PlanePositionSequence[0].ImagePositionPatient, float)
        require(np.abs(ipp - images[uid]["ipp"]).max() < 1e-3,
                f"frame {f + 1}: position {ipp} is not that of its source image")
        require(np.abs(iop - np.r_[images[uid]["row"], images[uid]["col"]]).max() < 1e-4,
                "shared plane orientation differs from the source images'")
        label = segments[number].SegmentLabel
        require(not masks[label][uid].any(), f"{label}: two frames for image {uid}")
        masks[label][uid] = frames[f] > 0
    for label, per_slice in masks.items():
        for uid, mask in per_slice.items():
            wrong = int((mask != expected[label][uid]).sum())
            require(wrong == 0, f"SEG {label}: {wrong} pixels differ from the label map on "
                                f"image {uid}")
    found = {label: {"slices": {u for u, m in per_slice.items() if m.any()},
                     "segment_number": next(n for n, s in segments.items()
                                            if s.SegmentLabel == label)}
             for label, per_slice in masks.items()}
    return ds, found


# ---- running -------------------------------------------------------------------------------

def dciodvfy_errors(path):
    result = subprocess.run(["dciodvfy", "-new", path], capture_output=True, text=True)
    lines = (result.stdout + result.stderr).splitlines()
    return [l for l in lines if l.startswith("Error")], [l for l in lines
                                                          if l.startswith("Warning")]


def check_entities(paths, images):
    """dcentvfy: patient, study and frame of reference agree across the new files and the
    source images."""
    result = subprocess.run(["dcentvfy"] + paths + [im["path"] for im in images.values()],
                            capture_output=True, text=True)
    errors = [l for l in (result.stdout + result.stderr).splitlines() if "Error" in l]
    require(not errors, "dcentvfy: " + "\n".join(errors[:5]))


def run_cajal(args, labels, dicom_dir, names, work):
    os.makedirs(work, exist_ok=True)
    rt, seg = os.path.join(work, "rtstruct.dcm"), os.path.join(work, "seg.dcm")
    result = subprocess.run([args.cajal, "labels-to-dicom", labels, "--reference-dicom",
                             dicom_dir, "--names", names, "--rtstruct", rt, "--seg", seg,
                             "--json"], capture_output=True, text=True)
    require(result.returncode == 0, f"cajal failed ({result.returncode}): {result.stderr}")
    return rt, seg, json.loads(result.stdout), result.stderr


def check_consistency(report, rt_found, seg_found, rt_ds, seg_ds):
    """The report, the RTSTRUCT and the SEG agree on structures, counts, slices and UIDs."""
    for entry in report["structures"]:
        name = entry["name"]
        require(entry["contours"] == rt_found[name]["contours"],
                f"{name}: report says {entry['contours']} contours, RTSTRUCT has "
                f"{rt_found[name]['contours']}")
        require(set(entry["slice_uids"]) == rt_found[name]["slices"] ==
                seg_found[name]["slices"], f"{name}: slices differ between report, RTSTRUCT "
                                           f"and SEG")
        require(entry["frames"] == len(seg_found[name]["slices"]), f"{name}: frame count")
        require(entry["roi_number"] == rt_found[name]["roi_number"] and
                entry["segment_number"] == seg_found[name]["segment_number"],
                f"{name}: ROI/segment numbers differ from the report")
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "FrameOfReferenceUID"):
        require(str(seg_ds.get(keyword)) == str(rt_ds.get(keyword, seg_ds.get(keyword))),
                f"{keyword} differs between RTSTRUCT and SEG")
    require(str(seg_ds.StudyInstanceUID) == report["study_uid"], "SEG study UID")
    require(rt_ds.SOPInstanceUID == report["rtstruct"]["sop_instance_uid"] and
            seg_ds.SOPInstanceUID == report["seg"]["sop_instance_uid"], "SOP Instance UIDs")


def check_series(args, labels, dicom_dir, names_file, empty_names, work):
    names = {}
    with open(names_file) as f:
        for line in f:
            label, name = line.split()[:2]
            names[name] = int(label)
    images = read_series(dicom_dir)
    expected = {name: expected_slice_masks(labels, images, label)
                for name, label in names.items()}
    rt, seg, report, stderr = run_cajal(args, labels, dicom_dir, names_file, work)
    written = [n for n in names if n not in empty_names]
    # Empty structures: out of both files, in the report, warned about.
    require([e["name"] for e in report["empty"]] == empty_names,
            f"report's empty structures: expected {empty_names}, got {report['empty']}")
    for name in empty_names:
        require(name in stderr and "empty" in stderr, f"no warning about empty {name}")
    require([s["name"] for s in report["structures"]] == written,
            f"report's structures: expected {written}, got {report['structures']}")
    for path in (rt, seg):
        errors, warnings = dciodvfy_errors(path)
        require(not errors, f"dciodvfy {os.path.basename(path)}: " + "\n".join(errors))
        print(f"dciodvfy {os.path.basename(path)}: 0 errors, {len(warnings)} warnings")
    check_entities([rt, seg], images)
    rt_ds, rt_found = check_rtstruct(rt, images, {n: expected[n] for n in written}, report)
    seg_ds, seg_found = check_seg(seg, images, {n: expected[n] for n in written})
    require(sorted(rt_found) == sorted(written) == sorted(seg_found),
            f"structures: RTSTRUCT {sorted(rt_found)}, SEG {sorted(seg_found)}, "
            f"expected {sorted(written)}")
    check_consistency(report, rt_found, seg_found, rt_ds, seg_ds)
    dice = plastimatch_dice(rt, dicom_dir, {n: expected[n] for n in written}, images, work)
    for name, (value, ml) in dice.items():
        print(f"plastimatch round trip {name}: Dice {value:.4f} ({ml:.2f} mL)")
        if ml > 1.0:
            require(value >= DICE_MIN, f"plastimatch round trip {name}: Dice {value:.4f} < "
                                       f"{DICE_MIN} ({ml:.2f} mL)")
    return rt, seg, report


def synthetic_case(args, series):
    data = os.path.join(args.data, "synthetic")
    _, _, report = check_series(args, os.path.join(data, "labels.nii.gz"),
                                os.path.join(data, series), os.path.join(data, "names.txt"),
                                SYNTHETIC_EMPTY, args.work)
    by_name = {s["name"]: s for s in report["structures"]}
    # A structure on a single slice; a ring (one keyhole contour per slice, not an outer and an
    # inner one); two islands per slice (two contours per slice).
    require(len(by_name["SpinalCord"]["slice_uids"]) == 1, "SpinalCord: expected one slice")
    heart = by_name["Heart"]
    require(heart["contours"] == len(heart["slice_uids"]) == 6,
            f"Heart (ring): expected 6 contours on 6 slices, got {heart['contours']} on "
            f"{len(heart['slice_uids'])}")
    islands = by_name["GTV_islands"]
    require(islands["contours"] == 2 * len(islands["slice_uids"]) == 8,
            f"GTV_islands: expected 8 contours on 4 slices, got {islands['contours']}")


def colin_case(args):
    data = os.path.join(args.data, "ch2")
    check_series(args, "/usr/share/mricron/templates/aal.nii.gz", os.path.join(data, "dicom"),
                 os.path.join(data, "names.txt"), [], args.work)


def other_grid_case(args):
    data = os.path.join(args.data, "synthetic")
    os.makedirs(args.work, exist_ok=True)
    img = nib.load(os.path.join(data, "labels.nii.gz"))
    shifted = img.affine.copy()
    shifted[0, 3] += 0.45  # half a voxel
    moved = os.path.join(args.work, "shifted.nii.gz")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), shifted), moved)
    rt = os.path.join(args.work, "rtstruct.dcm")
    result = subprocess.run([args.cajal, "labels-to-dicom", moved, "--reference-dicom",
                             os.path.join(data, "ct"), "--names", "2=Lung_L", "--rtstruct", rt],
                            capture_output=True, text=True)
    require(result.returncode == 1, f"exit code: expected 1, got {result.returncode}")
    require("label map grid" in result.stderr and "expected" in result.stderr,
            f"message: {result.stderr}")
    require(not os.path.exists(rt), "an RTSTRUCT was written for a label map off the grid")


def expect_failure(check, what):
    try:
        check()
    except Fail as e:
        print(f"caught as expected ({what}): {str(e).splitlines()[0][:120]}")
        return
    raise Fail(f"the checks did not catch: {what}")


def broken_files_case(args):
    """Each main assertion fails once on a deliberately broken file."""
    data = os.path.join(args.data, "synthetic")
    labels, series, names_file = (os.path.join(data, "labels.nii.gz"),
                                  os.path.join(data, "ct"), os.path.join(data, "names.txt"))
    rt, seg, report, _ = run_cajal(args, labels, series, names_file, args.work)
    images = read_series(series)
    names = {"Lung_L": 2, "Heart": 3}
    expected = {n: expected_slice_masks(labels, images, l) for n, l in names.items()}
    broken = os.path.join(args.work, "broken.dcm")

    # dciodvfy: an RTSTRUCT without its Structure Set ROI Sequence.
    ds = pydicom.dcmread(rt)
    del ds.StructureSetROISequence
    ds.save_as(broken)
    expect_failure(lambda: require(not dciodvfy_errors(broken)[0], "dciodvfy errors"),
                   "dciodvfy on an RTSTRUCT missing a type 1 sequence")
    # dcentvfy: an RTSTRUCT whose patient name differs from the source's.
    ds = pydicom.dcmread(rt)
    ds.PatientName = "Someone^Else"
    ds.save_as(broken)
    expect_failure(lambda: check_entities([broken, seg], images),
                   "an RTSTRUCT naming another patient")
    # RTSTRUCT rasterisation: a contour shifted by one pixel.
    ds = pydicom.dcmread(rt)
    ds.StructureSetROISequence = [r for r in ds.StructureSetROISequence if r.ROIName in names]
    keep = {int(r.ROINumber) for r in ds.StructureSetROISequence}
    ds.ROIContourSequence = [c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) in keep]
    ds.RTROIObservationsSequence = [o for o in ds.RTROIObservationsSequence
                                    if int(o.ReferencedROINumber) in keep]
    ds.save_as(broken)
    check_rtstruct(broken, images, expected, report)  # the trimmed copy passes
    contour = ds.ROIContourSequence[0].ContourSequence[0]
    points = [float(v) for v in contour.ContourData]
    contour.ContourData = [f"{v + (0.9 if i % 3 == 0 else 0):.6g}" for i, v in enumerate(points)]
    ds.save_as(broken)
    expect_failure(lambda: check_rtstruct(broken, images, expected, report),
                   "RTSTRUCT contour moved by one pixel")
    # DS length: one value written with 17 characters.
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    ds = pydicom.dcmread(rt)
    ds.StructureSetROISequence = [r for r in ds.StructureSetROISequence if r.ROIName in names]
    ds.ROIContourSequence = [c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) in keep]
    ds.RTROIObservationsSequence = [o for o in ds.RTROIObservationsSequence
                                    if int(o.ReferencedROINumber) in keep]
    contour = ds.ROIContourSequence[0].ContourSequence[0]
    texts = [str(v) for v in contour.ContourData]
    texts[0] = f"{float(texts[0]):.14f}"[:17]
    contour.ContourData = texts
    ds.save_as(broken)
    expect_failure(lambda: check_rtstruct(broken, images, expected, report),
                   "a DS value longer than 16 characters")
    # SEG exactness: one pixel flipped in one frame.
    ds = pydicom.dcmread(seg)
    all_expected = {s["name"]: expected_slice_masks(labels, images, s["label"])
                    for s in report["structures"]}
    check_seg(seg, images, all_expected)
    frames = ds.pixel_array.copy()
    frames[0, 0, 0] ^= 1
    ds.PixelData = np.packbits(frames.reshape(-1), bitorder="little").tobytes()
    ds.save_as(broken)
    expect_failure(lambda: check_seg(broken, images, all_expected), "a SEG pixel flipped")
    # SEG frame mapping: a frame pointing at the wrong source image.
    ds = pydicom.dcmread(seg)
    groups = ds.PerFrameFunctionalGroupsSequence
    first = groups[0].DerivationImageSequence[0].SourceImageSequence[0]
    other = next(u for u in images if u != first.ReferencedSOPInstanceUID)
    first.ReferencedSOPInstanceUID = other
    ds.save_as(broken)
    expect_failure(lambda: check_seg(broken, images, all_expected),
                   "a SEG frame referencing the wrong image")
    # Consistency: a report whose contour count disagrees with the files.
    _, rt_found = check_rtstruct(rt, images, all_expected, report)
    _, seg_found = check_seg(seg, images, all_expected)
    rt_ds, seg_ds = pydicom.dcmread(rt), pydicom.dcmread(seg)
    check_consistency(report, rt_found, seg_found, rt_ds, seg_ds)
    report["structures"][1]["contours"] += 1
    expect_failure(lambda: check_consistency(report, rt_found, seg_found, rt_ds, seg_ds),
                   "a report disagreeing with the RTSTRUCT's contour count")
    # Plastimatch Dice: our lung dilated by one row against plastimatch's.
    eroded = {n: {u: m.copy() for u, m in per.items()} for n, per in expected.items()}
    for uid, mask in eroded["Lung_L"].items():
        grown = mask.copy()
        grown[1:-1, :] |= mask[:-2, :] | mask[2:, :]  # one row of dilation
        mask[...] = grown
    dice = plastimatch_dice(rt, series, eroded, images, args.work)
    expect_failure(lambda: require(dice["Lung_L"][0] >= DICE_MIN, f"Dice {dice['Lung_L'][0]}"),
                   "plastimatch Dice against a dilated lung")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--cajal")
    parser.add_argument("--data")
    parser.add_argument("--work")
    parser.add_argument("case", nargs="?")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    for tool in ("plastimatch", "dciodvfy", "dcentvfy"):
        if shutil.which(tool) is None:
            print(f"{tool} not installed", file=sys.stderr)
            return 1 if os.environ.get("CAJAL_IT_REQUIRE_TOOLS") == "1" else SKIP
    if os.path.exists(args.work):
        shutil.rmtree(args.work)
    os.makedirs(args.work)
    try:
        prefix = args.case.split("_")[0]
        if prefix in SYNTHETIC_SERIES:
            synthetic_case(args, SYNTHETIC_SERIES[prefix])
        elif prefix == "Colin27Aal":
            colin_case(args)
        elif prefix == "LabelMapOnAnotherGrid":
            other_grid_case(args)
        elif prefix == "BrokenFiles":
            broken_files_case(args)
        else:
            raise Fail(f"unknown case {args.case}")
    except Fail as e:
        print(f"FAIL {args.case}: {e}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    print(f"PASS {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
