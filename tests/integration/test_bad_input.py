"""Input cajal must refuse: each exits 1 with a clear message on stderr and leaves nothing at OUT
(not even a temporary file beside it). Includes series whose geometry cannot be trusted (missing
slice, uneven spacing, duplicate position, gantry tilt), which cajal must not resample silently."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402

# Signs of an internal error or an unhandled exception instead of a message for the user.
NOT_A_CLEAR_MESSAGE = ("terminate called", "Traceback", "itk::ExceptionObject", "Segmentation",
                       "Aborted", "core dumped", "what():")


def expect_refused(args, src, out, what, must_mention=(), any_of=()):
    """cajal convert SRC OUT exits 1, says something useful, writes nothing in OUT's folder."""
    out_dir = os.path.dirname(out)
    # Only folders this test owns are listed (never /proc).
    mine = os.path.abspath(out_dir).startswith(os.path.abspath(args.work) + os.sep)
    before = it.listing(out_dir) if mine and os.path.isdir(out_dir) else None
    proc = it.run_cajal(args.cajal, "convert", src, out)
    it.expect_exit(proc, 1, f"cajal convert on {what}")
    err = proc.stderr.strip()
    it.require(err, f"{what}: expected a message on stderr, got nothing")
    for bad in NOT_A_CLEAR_MESSAGE:
        it.require(bad not in err, f"{what}: expected a clear message, got an internal one "
                                   f"({bad!r}): {err!r}")
    for word in must_mention:
        it.require(word.lower() in err.lower(),
                   f"{what}: expected the message to mention {word!r}, got {err!r}")
    if any_of:
        it.require(any(w.lower() in err.lower() for w in any_of),
                   f"{what}: expected the message to mention one of {list(any_of)}, got {err!r}")
    it.require(not os.path.lexists(out) or os.path.isdir(out),
               f"{what}: expected nothing written at {out}, but it exists")
    if before is not None:
        after = it.listing(out_dir)
        it.require(after == before,
                   f"{what}: expected {out_dir} unchanged, new entries: {sorted(after - before)}")
    return proc


def out_path(args, name="out.nii"):
    folder = os.path.join(args.work, "out")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, name)


# --- inputs that are not a volume -----------------------------------------------------------

def empty_folder(args):
    folder = it.fresh_dir(os.path.join(args.work, "empty_study"))
    expect_refused(args, folder, out_path(args), "an empty folder", must_mention=["empty_study"])
    proc = it.run_cajal(args.cajal, "info", folder)
    it.expect_exit(proc, 1, "cajal info on an empty folder")


def truncated_file(args):
    src = os.path.join(it.PYDICOM_TEST_FILES, "MR_truncated.dcm")
    it.need_files(src)
    local = os.path.join(args.work, "MR_truncated.dcm")
    shutil.copyfile(src, local)
    expect_refused(args, local, out_path(args), "a truncated DICOM file",
                   must_mention=["MR_truncated.dcm"])


def truncated_file_in_series_folder(args):
    # A series whose middle file was cut short (a broken copy from a PACS): refuse, do not skip
    # the file silently (that would leave a gap) and do not read garbage.
    series = os.path.join(args.data, "series", "kmeans")
    it.need_fixture(series)
    folder = os.path.join(args.work, "series")
    shutil.copytree(series, folder)
    victim = sorted(os.listdir(folder))[30]
    path = os.path.join(folder, victim)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 4000)
    # The message must name the damaged file: "missing slice" alone sends the user looking for
    # a file that is there.
    expect_refused(args, folder, out_path(args), "a series with one truncated file",
                   must_mention=[victim])


def no_image_series(args):
    src = os.path.join(it.PYDICOM_TEST_FILES, "rtstruct.dcm")
    it.need_files(src)
    folder = it.fresh_dir(os.path.join(args.work, "rt_only"))
    shutil.copyfile(src, os.path.join(folder, "rtstruct.dcm"))
    expect_refused(args, folder, out_path(args), "a folder with only an RTSTRUCT",
                   must_mention=["rt_only"])


def dose_grid_gdcm_cannot_read(args):
    # pydicom's rtdose_1frame.dcm: a dose grid with 15 offsets in GridFrameOffsetVector and no
    # NumberOfFrames. GDCM asserts on it (the process aborts), so cajal must refuse it first, as a
    # file and in a folder of its own; cajal info too.
    src = os.path.join(it.PYDICOM_TEST_FILES, "rtdose_1frame.dcm")
    it.need_files(src)
    folder = it.fresh_dir(os.path.join(args.work, "dose_only"))
    local = os.path.join(folder, "rtdose_1frame.dcm")
    shutil.copyfile(src, local)
    for what, path, words in (("an RT Dose without NumberOfFrames", local,
                               ["rtdose_1frame.dcm", "GridFrameOffsetVector", "NumberOfFrames"]),
                              ("a folder with only that RT Dose", folder, ["dose_only"])):
        expect_refused(args, path, out_path(args), what, must_mention=words)
        proc = it.run_cajal(args.cajal, "info", path)
        it.expect_exit(proc, 1, f"cajal info on {what}")


def pixel_module_gdcm_aborts_on(args):
    # Image Pixel module values that GDCM's reader asserts on (the process aborts; found by
    # mutating pydicom's files one attribute at a time) and a geometry that is not a number: each
    # in pydicom's MR_small.dcm (uncompressed, so cajal's own reader declines the odd ones and GDCM
    # would get them), refused with the attribute's name, by convert and by info.
    import pydicom
    src = os.path.join(it.PYDICOM_TEST_FILES, "MR_small.dcm")
    it.need_files(src)
    variants = [("SamplesPerPixel", 0x00280002, 0), ("BitsAllocated", 0x00280100, 12),
                ("BitsAllocated", 0x00280100, 1), ("BitsStored", 0x00280101, 17),
                ("PhotometricInterpretation", 0x00280004, "PALETTE COLOR"),
                ("PixelSpacing", 0x00280030, "nan\\1"),
                ("BitsStored", [(0x00280100, 32), (0x00280101, 17), (0x00280102, 16)], 17)]
    for k, (name, tag, value) in enumerate(variants):
        ds = pydicom.dcmread(src)
        for t, v in tag if isinstance(tag, list) else [(tag, value)]:
            ds[t].value = v
        path = os.path.join(it.fresh_dir(os.path.join(args.work, f"variant{k}")), "MR_small.dcm")
        ds.save_as(path, write_like_original=True)
        what = f"MR_small.dcm with {name} {value!r}"
        expect_refused(args, path, out_path(args), what, must_mention=[name])
        proc = it.run_cajal(args.cajal, "info", path)
        it.expect_exit(proc, 1, f"cajal info on {what}")


def codestream_disagrees_with_rows_columns(args):
    # Compressed pixel data whose own frame header (JPEG-LS SOF55, JPEG 2000 SIZ) says another
    # matrix than Rows and Columns: GDCM's codecs abort (JPEG-LS) or crash (JPEG 2000) on them.
    # Refused, naming the codec and both sizes; the unchanged files still read (control).
    import pydicom
    for name, rows in (("MR_small_jpeg_ls_lossless.dcm", 128), ("MR_small_jp2klossless.dcm", 1)):
        src = os.path.join(it.PYDICOM_TEST_FILES, name)
        it.need_files(src)
        proc = it.run_cajal(args.cajal, "info", src)
        it.expect_exit(proc, 0, f"cajal info on {name} as it is (control)")
        ds = pydicom.dcmread(src)
        ds.Rows = rows
        path = os.path.join(it.fresh_dir(os.path.join(args.work, f"rows{rows}")), name)
        ds.save_as(path, write_like_original=True)
        what = f"{name} with Rows {rows}"
        expect_refused(args, path, out_path(args), what,
                       must_mention=[name, "JPEG", f"64 x {rows}", "64 x 64"])
        proc = it.run_cajal(args.cajal, "info", path)
        it.expect_exit(proc, 1, f"cajal info on {what}")


def volume_header_itk_aborts_on(args):
    # Headers ITK aborts, corrupts its heap or hangs on, each refused with the field's name: a
    # NIfTI with a NaN spacing or an infinite sform (VNL aborts on the matrix), a MetaImage with
    # NDims 0 (heap corruption) or -1 (MetaIO loops). A control of each reads.
    import struct
    import numpy as np
    pixels = (np.arange(20 * 18 * 10) % 300).astype("<i2").tobytes()

    def nifti(pixdim=(1.0, 1.0, 2.0), srow_x=(1.0, 0.0, 0.0, 0.0)):
        h = bytearray(348)
        struct.pack_into("<i", h, 0, 348)
        struct.pack_into("<8h", h, 40, 3, 20, 18, 10, 1, 1, 1, 1)
        struct.pack_into("<2h", h, 70, 4, 16)
        struct.pack_into("<4f", h, 76, 1.0, *pixdim)
        struct.pack_into("<f", h, 108, 352.0)
        struct.pack_into("<2h", h, 252, 1, 1)
        struct.pack_into("<12f", h, 280, *srow_x, 0, 1, 0, 0, 0, 0, 2, 0)
        h[344:348] = b"n+1\0"
        return bytes(h) + b"\0" * 4 + pixels

    def mha(ndims):
        return ("ObjectType = Image\nNDims = %s\nDimSize = 20 18 10\nElementType = MET_SHORT\n"
                "ElementSpacing = 1 1 2\nElementDataFile = LOCAL\n" % ndims).encode() + pixels

    folder = it.fresh_dir(os.path.join(args.work, "headers"))
    cases = [("control.nii", nifti(), None),
             ("nan_pixdim.nii", nifti(pixdim=(float("nan"), 1.0, 2.0)), "pixdim"),
             ("inf_sform.nii", nifti(srow_x=(float("inf"), 0.0, 0.0, 0.0)), "sform"),
             ("control.mha", mha(3), None), ("ndims0.mha", mha(0), "NDims"),
             ("ndims-1.mha", mha(-1), "NDims")]
    for name, blob, field in cases:
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(blob)
        if field is None:
            proc = it.run_cajal(args.cajal, "info", path)
            it.expect_exit(proc, 0, f"cajal info on {name} (control)")
            continue
        expect_refused(args, path, out_path(args), name, must_mention=[name, field])
        proc = it.run_cajal(args.cajal, "info", path)
        it.expect_exit(proc, 1, f"cajal info on {name}")


def path_does_not_exist(args):
    missing = os.path.join(args.work, "no_such_study")
    expect_refused(args, missing, out_path(args), "a path that does not exist",
                   must_mention=["no_such_study"])
    proc = it.run_cajal(args.cajal, "info", missing)
    it.expect_exit(proc, 1, "cajal info on a path that does not exist")


# --- outputs that cannot be written (tests run as root: permissions do not stop root) ----------

def input_volume(args):
    """A series cajal can convert (checked, so that a refusal below is about the output)."""
    series = os.path.join(args.data, "series", "kmeans")
    it.need_fixture(series)
    control = os.path.join(args.work, "control", "control.nii")
    os.makedirs(os.path.dirname(control))
    proc = it.run_cajal(args.cajal, "convert", series, control)
    it.require(proc.returncode == 0 and os.path.isfile(control),
               f"control: expected the input to convert to a writable path (exit 0), got exit "
               f"{proc.returncode}; the output checks below would prove nothing")
    return series


def output_parent_missing(args):
    out = os.path.join(args.work, "no_such_folder", "out.nii")
    expect_refused(args, input_volume(args), out, "an output under a folder that does not exist")
    it.require(not os.path.exists(os.path.dirname(out)),
               "expected cajal not to create the missing output folder")


def output_parent_is_a_file(args):
    blocker = os.path.join(args.work, "out", "report.txt")
    os.makedirs(os.path.dirname(blocker))
    with open(blocker, "w") as f:
        f.write("not a folder\n")
    out = os.path.join(blocker, "out.nii")   # ENOTDIR, even for root
    expect_refused(args, input_volume(args), out, "an output whose parent is a regular file")
    with open(blocker) as f:
        it.require(f.read() == "not a folder\n", "expected the blocking file untouched")


def output_is_a_directory(args):
    out = os.path.join(args.work, "out", "volume.nii")
    os.makedirs(out)   # rename(tmp, OUT) fails with EISDIR, even for root
    expect_refused(args, input_volume(args), out, "an output path that is a directory")
    it.require(os.path.isdir(out) and not os.listdir(out),
               "expected the directory at OUT left as it was (empty)")


def output_in_read_only_filesystem(args):
    # /proc refuses new files for everyone, root included.
    out = "/proc/cajal_it_out.nii"
    expect_refused(args, input_volume(args), out, "an output on a read-only file system")


def output_extension_unknown(args):
    expect_refused(args, input_volume(args), out_path(args, "out.xyz"),
                   "an output with an unknown extension", must_mention=[".xyz"])


# --- series whose geometry cannot be trusted ---------------------------------------------------

def ch2_copy(args):
    series = os.path.join(args.data, "series", "ch2")
    it.need_fixture(series)
    folder = os.path.join(args.work, "series")
    shutil.copytree(series, folder)
    return folder, it.sorted_series_files(folder)


def expect_series_problem(args, folder, what, words):
    expect_refused(args, folder, out_path(args), what, any_of=words)
    # `cajal info` is how a user finds out why: the problem is listed (exit 0) or is the error.
    proc = it.run_cajal(args.cajal, "info", folder, "--json")
    if proc.returncode == 0:
        info = json.loads(proc.stdout)
        problems = " ".join(s.get("problem", "") for s in info.get("series", []))
        it.require(any(w in problems.lower() for w in words),
                   f"{what}: cajal info exits 0, so expected the series' problem to mention one "
                   f"of {list(words)}, got {problems!r}")
    else:
        it.expect_exit(proc, 1, f"cajal info on {what}")
        it.require(any(w in proc.stderr.lower() for w in words),
                   f"{what}: expected cajal info's error to mention one of {list(words)}")


def missing_slice(args):
    folder, files = ch2_copy(args)
    os.remove(files[90])
    expect_series_problem(args, folder, "a series with a missing middle slice", ["missing"])


def uneven_spacing(args):
    import pydicom
    folder, files = ch2_copy(args)
    # Slices 100.. move up by 0.4 mm: one gap of 1.4 mm, far from the 1 mm median (and not a
    # whole number of slices, so not a missing slice either).
    for path in files[100:]:
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [f"{x:.6f}", f"{y:.6f}", f"{z + 0.4:.6f}"]
        ds.SliceLocation = f"{z + 0.4:.6f}"
        ds.save_as(path)
    expect_series_problem(args, folder, "a series with uneven slice spacing",
                          ["uneven", "spacing"])


def duplicate_position(args):
    import pydicom
    from pydicom.uid import generate_uid
    folder, files = ch2_copy(args)
    ds = pydicom.dcmread(files[90])
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.InstanceNumber = 1000
    ds.save_as(os.path.join(folder, "zz_second_copy.dcm"))
    expect_series_problem(args, folder, "a series with two slices at one position",
                          ["duplicate", "same position"])


def gantry_tilt(args):
    import numpy as np
    import pydicom
    folder, files = ch2_copy(args)
    # Each slice shifted along the row direction by 0.2 mm more than the previous one: positions
    # no longer lie along the normal (a tilt of atan(0.2) = 11.3 degrees).
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path)
        row = np.array([float(v) for v in ds.ImageOrientationPatient[:3]])
        pos = np.array([float(v) for v in ds.ImagePositionPatient]) + 0.2 * k * row
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.save_as(path)
    expect_series_problem(args, folder, "a series with gantry tilt", ["tilt"])


CASES = {
    "empty_folder": empty_folder,
    "truncated_file": truncated_file,
    "truncated_file_in_series_folder": truncated_file_in_series_folder,
    "folder_without_image_series": no_image_series,
    "dose_grid_gdcm_cannot_read": dose_grid_gdcm_cannot_read,
    "pixel_module_gdcm_aborts_on": pixel_module_gdcm_aborts_on,
    "codestream_disagrees_with_rows_columns": codestream_disagrees_with_rows_columns,
    "volume_header_itk_aborts_on": volume_header_itk_aborts_on,
    "path_does_not_exist": path_does_not_exist,
    "output_parent_folder_missing": output_parent_missing,
    "output_parent_is_a_file": output_parent_is_a_file,
    "output_is_a_directory": output_is_a_directory,
    "output_on_read_only_filesystem": output_in_read_only_filesystem,
    "output_extension_unknown": output_extension_unknown,
    "series_missing_slice": missing_slice,
    "series_uneven_spacing": uneven_spacing,
    "series_duplicate_position": duplicate_position,
    "series_gantry_tilt": gantry_tilt,
}

if __name__ == "__main__":
    it.main(CASES)
