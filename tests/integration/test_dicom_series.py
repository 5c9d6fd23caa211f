"""DICOM series written by plastimatch from real volumes, read by `cajal convert`, compared with
dcm2niix's independent conversion and with the source NIfTI (nibabel, RAS, 1e-3 mm); the same
series renamed, shuffled, spread over subfolders, with localizers or with a second series."""
import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402


def series_dir(args, name):
    path = os.path.join(args.data, "series", name)
    it.need_fixture(path)
    return path


def reference(args, name):
    path = os.path.join(args.data, "dcm2niix", name + ".nii.gz")
    it.need_fixture(path)
    return path


def convert_ok(args, src, out_name="out.nii", extra=()):
    out = os.path.join(args.work, out_name)
    proc = it.run_cajal(args.cajal, "convert", src, out, *extra)
    it.expect_exit(proc, 0, f"cajal convert {src}")
    it.require(os.path.isfile(out), f"cajal convert exited 0 but wrote nothing at {out}")
    return out, proc


def check_same_as_references(args, out, name):
    """Voxels and affine as dcm2niix's conversion and as the source NIfTI; the pixel type kept
    (plastimatch writes signed 16-bit, slope 1, intercept 0 or -1000: int16)."""
    import numpy as np
    it.compare_volumes(out, reference(args, name), f"cajal vs dcm2niix ({name})")
    it.compare_volumes(out, it.source_nifti(args.data, name), f"cajal vs source NIfTI ({name})")
    _, _, dtype = it.load_canonical(out)
    it.require(dtype == np.dtype(np.int16),
               f"{name}: expected pixel type int16 (16-bit DICOM whose rescaled values fit "
               f"int16), got {dtype}")


def copy_series(src, dst, rename=None):
    """Copies every file of src into dst; rename(i, name) gives the new relative name."""
    os.makedirs(dst, exist_ok=True)
    names = sorted(os.listdir(src))
    out = []
    for i, name in enumerate(names):
        rel = rename(i, name) if rename else name
        path = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(os.path.join(src, name), path)
        out.append(path)
    return out


def shuffled_names(count, seed, prefix="IM"):
    """Names that look ordered but follow a random permutation of the slices."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return [f"{prefix}{order[i]:05d}" for i in range(count)]


# --- against the references ---------------------------------------------------------------

def matches_dcm2niix(name):
    def case(args):
        it.need_tools("plastimatch", "dcm2niix")
        out, _ = convert_ok(args, series_dir(args, name), "out.nii.gz")   # as dcm2niix -z y
        check_same_as_references(args, out, name)
    return case


def ct_in_hounsfield_units(args):
    # A CT series stored with RescaleIntercept -1000 (plastimatch shifts volumes with negative
    # values up to 0): the rescale must be applied, and HU that fit int16 stay int16.
    it.need_tools("plastimatch", "dcm2niix")
    out, _ = convert_ok(args, series_dir(args, "ct_hu"))
    check_same_as_references(args, out, "ct_hu")


# --- order, folders, localizers --------------------------------------------------------------

def order_ignores_file_names(name):
    def case(args):
        it.need_tools("plastimatch", "dcm2niix")
        src = series_dir(args, name)
        names = shuffled_names(len(os.listdir(src)), seed=20261126)
        folder = os.path.join(args.work, "shuffled")
        copy_series(src, folder, rename=lambda i, _: names[i])  # no extension, as PACS exports
        out, _ = convert_ok(args, folder)
        check_same_as_references(args, out, name)
    return case


def order_ignores_instance_number(args):
    import pydicom
    it.need_tools("plastimatch", "dcm2niix")
    files = copy_series(series_dir(args, "ch2"), os.path.join(args.work, "series"))
    numbers = list(range(1, len(files) + 1))
    random.Random(7).shuffle(numbers)
    for path, number in zip(files, numbers):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = number
        ds.save_as(path)
    out, _ = convert_ok(args, os.path.join(args.work, "series"))
    check_same_as_references(args, out, "ch2")


def found_recursively(args):
    it.need_tools("plastimatch", "dcm2niix")
    src = series_dir(args, "kmeans")
    copy_series(src, os.path.join(args.work, "study"),
                rename=lambda i, n: os.path.join(f"part{i % 3}", "deeper" if i % 2 else "", n))
    out, _ = convert_ok(args, os.path.join(args.work, "study"))
    check_same_as_references(args, out, "kmeans")


def add_localizer(src_file, dst_file, orientation, position_shift=(0.0, 0.0, 0.0)):
    """A copy of one slice made into a localizer: ImageType ORIGINAL\\PRIMARY\\LOCALIZER, a new
    SOPInstanceUID, the given orientation and a shifted position."""
    import pydicom
    from pydicom.uid import generate_uid
    ds = pydicom.dcmread(src_file)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.ImageOrientationPatient = [f"{v:g}" for v in orientation]
    ds.ImagePositionPatient = [f"{float(p) + s:g}"
                               for p, s in zip(ds.ImagePositionPatient, position_shift)]
    ds.InstanceNumber = 999
    ds.save_as(dst_file)


def check_left_out(args, folder, localizer_name, proc_convert):
    text = proc_convert.stderr.lower()
    it.require(localizer_name.lower() in text or "localizer" in text,
               f"expected a warning on stderr naming the left-out localizer {localizer_name}, "
               f"got: {proc_convert.stderr.strip()!r}")
    proc = it.run_cajal(args.cajal, "info", folder, "--json")
    it.expect_exit(proc, 0, "cajal info --json on the series with a localizer")
    info = json.loads(proc.stdout)
    series = info.get("series", [])
    it.require(len(series) == 1,
               f"expected 1 image series (the localizer belongs to it), got {len(series)}")
    left_out = series[0].get("left_out", [])
    it.require(any(localizer_name in entry for entry in left_out),
               f"expected left_out to name {localizer_name}, got {left_out}")
    it.require(series[0].get("image_count") == 181,
               f"expected image_count 181 (localizer not counted), "
               f"got {series[0].get('image_count')}")


def leaves_out_orthogonal_localizer(args):
    it.need_tools("plastimatch", "dcm2niix")
    src = series_dir(args, "ch2")
    folder = os.path.join(args.work, "series")
    files = copy_series(src, folder)
    # Sagittal orientation, orthogonal to the axial series; same rows and columns count.
    name = "image0090_localizer.dcm"
    add_localizer(files[90], os.path.join(folder, name), (0, 1, 0, 0, 0, -1))
    out, proc = convert_ok(args, folder)
    check_same_as_references(args, out, "ch2")
    check_left_out(args, folder, name, proc)


def leaves_out_localizer_by_image_type(args):
    # Same orientation as the series, half a slice off: only ImageType tells it apart. Kept in,
    # it would make the spacing uneven or change the volume.
    it.need_tools("plastimatch", "dcm2niix")
    src = series_dir(args, "ch2")
    folder = os.path.join(args.work, "series")
    files = copy_series(src, folder)
    name = "image0090_localizer.dcm"
    add_localizer(files[90], os.path.join(folder, name), (-1, 0, 0, 0, -1, 0), (0, 0, 0.5))
    out, proc = convert_ok(args, folder)
    check_same_as_references(args, out, "ch2")
    check_left_out(args, folder, name, proc)


def skips_non_image_files(args):
    # An RTSTRUCT and a text file beside the series: skipped, the RTSTRUCT with a warning and
    # listed under "skipped"; the volume unchanged.
    it.need_tools("plastimatch", "dcm2niix")
    rtstruct = os.path.join(it.PYDICOM_TEST_FILES, "rtstruct.dcm")
    it.need_files(rtstruct)
    folder = os.path.join(args.work, "study")
    copy_series(series_dir(args, "kmeans"), folder)
    shutil.copyfile(rtstruct, os.path.join(folder, "rtstruct.dcm"))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("exported from PACS\n")
    out, proc = convert_ok(args, folder)
    check_same_as_references(args, out, "kmeans")
    it.require("rtstruct.dcm" in proc.stderr,
               f"expected a warning naming the skipped rtstruct.dcm, got {proc.stderr.strip()!r}")
    proc = it.run_cajal(args.cajal, "info", folder, "--json")
    it.expect_exit(proc, 0, "cajal info --json on a series with an RTSTRUCT beside it")
    info = json.loads(proc.stdout)
    it.require(len(info.get("series", [])) == 1,
               f"expected 1 image series, got {len(info.get('series', []))}")
    skipped = info.get("skipped", [])
    it.require(any("rtstruct.dcm" in entry for entry in skipped),
               f"expected 'skipped' to list rtstruct.dcm, got {skipped}")


# --- two series in one folder ------------------------------------------------------------------

def two_series_folder(args):
    """ch2's and KmeansTest's series mixed in one flat folder under random names."""
    folder = os.path.join(args.work, "two_series")
    for name, seed in (("ch2", 1), ("kmeans", 2)):
        src = series_dir(args, name)
        names = shuffled_names(len(os.listdir(src)), seed, prefix=f"S{seed}_")
        copy_series(src, folder, rename=lambda i, _: names[i] + ".dcm")
    uids = {name: it.series_uid(series_dir(args, name)) for name in ("ch2", "kmeans")}
    return folder, uids


def two_series_info_lists_both(args):
    it.need_tools("plastimatch")
    folder, uids = two_series_folder(args)
    proc = it.run_cajal(args.cajal, "info", folder, "--json")
    it.expect_exit(proc, 0, "cajal info --json on a folder with two series")
    info = json.loads(proc.stdout)
    it.require(info.get("kind") == "dicom_folder",
               f"expected kind 'dicom_folder', got {info.get('kind')!r}")
    by_uid = {s.get("series_uid"): s for s in info.get("series", [])}
    it.require(set(by_uid) == set(uids.values()),
               f"expected series {sorted(uids.values())}, got {sorted(map(str, by_uid))}")
    expected = {"ch2": (181, [181, 217, 181], [1, 1, 1], "RAS"),
                "kmeans": (62, [128, 128, 62], [2, 2, 3], "LSA")}
    for name, (count, size, spacing, orientation) in expected.items():
        s = by_uid[uids[name]]
        it.require(s.get("image_count") == count,
                   f"{name}: expected image_count {count}, got {s.get('image_count')}")
        it.require(s.get("size") == size, f"{name}: expected size {size}, got {s.get('size')}")
        got_spacing = s.get("spacing") or []
        it.require(len(got_spacing) == 3 and
                   all(abs(a - b) < 1e-6 for a, b in zip(got_spacing, spacing)),
                   f"{name}: expected spacing {spacing}, got {got_spacing}")
        it.require(s.get("orientation") == orientation,
                   f"{name}: expected orientation {orientation}, got {s.get('orientation')!r}")
        it.require(not s.get("problem"), f"{name}: expected no problem, got {s.get('problem')!r}")
    it.require("volume" not in info or not info["volume"],
               "with two series and no --series, info must not pick one and describe it")
    # The human-readable listing names both too.
    proc = it.run_cajal(args.cajal, "info", folder)
    it.expect_exit(proc, 0, "cajal info on a folder with two series")
    for name, uid in uids.items():
        it.require(uid in proc.stdout, f"expected the {name} series UID {uid} in the listing")


def two_series_convert_without_series_fails(args):
    it.need_tools("plastimatch")
    folder, uids = two_series_folder(args)
    out = os.path.join(args.work, "out", "out.nii.gz")
    os.makedirs(os.path.dirname(out))
    proc = it.run_cajal(args.cajal, "convert", folder, out)
    it.expect_exit(proc, 1, "cajal convert on two series without --series")
    for name, uid in uids.items():
        it.require(uid in proc.stderr,
                   f"expected the error to name the {name} series UID {uid}, got: "
                   f"{proc.stderr.strip()!r}")
    it.require(not it.listing(os.path.dirname(out)),
               f"expected nothing written, found {it.listing(os.path.dirname(out))}")


def two_series_convert_with_series_picks_it(args):
    it.need_tools("plastimatch", "dcm2niix")
    folder, uids = two_series_folder(args)
    for name in ("kmeans", "ch2"):
        out, _ = convert_ok(args, folder, f"{name}.nii", ("--series", uids[name]))
        check_same_as_references(args, out, name)


def two_series_info_with_series_describes_it(args):
    it.need_tools("plastimatch")
    folder, uids = two_series_folder(args)
    for name, size, orientation in (("kmeans", [128, 128, 62], "LSA"),
                                    ("ch2", [181, 217, 181], "RAS")):
        proc = it.run_cajal(args.cajal, "info", folder, "--series", uids[name], "--json")
        it.expect_exit(proc, 0, f"cajal info --series {uids[name]} --json")
        volume = json.loads(proc.stdout).get("volume") or {}
        it.require(volume.get("series_uid") == uids[name],
                   f"expected the {name} series described, got {volume.get('series_uid')!r}")
        it.require(volume.get("size") == size and volume.get("orientation") == orientation,
                   f"{name}: expected size {size} and orientation {orientation}, got "
                   f"{volume.get('size')} {volume.get('orientation')!r}")


def unknown_series_uid_fails(args):
    it.need_tools("plastimatch")
    folder, uids = two_series_folder(args)
    out = os.path.join(args.work, "out", "out.nii")
    os.makedirs(os.path.dirname(out))
    proc = it.run_cajal(args.cajal, "convert", folder, out, "--series", "1.2.3.4.5")
    it.expect_exit(proc, 1, "cajal convert --series with a UID that is not in the folder")
    it.require("1.2.3.4.5" in proc.stderr,
               f"expected the error to name the UID asked for, got {proc.stderr.strip()!r}")
    for uid in uids.values():
        it.require(uid in proc.stderr,
                   f"expected the error to list the series there ({uid}), "
                   f"got {proc.stderr.strip()!r}")
    it.require(not it.listing(os.path.dirname(out)), "expected nothing written")


CASES = {
    "matches_dcm2niix_ch2": matches_dcm2niix("ch2"),
    "matches_dcm2niix_kmeans_coronal": matches_dcm2niix("kmeans"),
    "matches_dcm2niix_oblique": matches_dcm2niix("oblique"),
    "ct_rescale_gives_hounsfield_units_int16": ct_in_hounsfield_units,
    "order_ignores_file_names_ch2": order_ignores_file_names("ch2"),
    "order_ignores_file_names_kmeans_coronal": order_ignores_file_names("kmeans"),
    "order_ignores_instance_number": order_ignores_instance_number,
    "found_recursively_in_subfolders": found_recursively,
    "leaves_out_orthogonal_localizer": leaves_out_orthogonal_localizer,
    "leaves_out_localizer_by_image_type": leaves_out_localizer_by_image_type,
    "skips_non_image_files_with_warning": skips_non_image_files,
    "two_series_info_lists_both": two_series_info_lists_both,
    "two_series_convert_without_series_fails_naming_both": two_series_convert_without_series_fails,
    "two_series_convert_with_series_picks_it": two_series_convert_with_series_picks_it,
    "two_series_info_with_series_describes_it": two_series_info_with_series_describes_it,
    "unknown_series_uid_fails": unknown_series_uid_fails,
}

if __name__ == "__main__":
    it.main(CASES)
