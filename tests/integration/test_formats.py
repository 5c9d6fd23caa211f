"""`cajal convert` writes NIfTI, NRRD (.nrrd, .nhdr) and MetaImage (.mha, .mhd) with the voxels,
pixel type and geometry of its input. NRRD and MetaImage are read back by the small readers
below, written from the format specifications (teem's NRRD format page, MetaIO's tags), not by
ITK; NIfTI by nibabel. Label maps (uint8, uint16) must come out exactly, in their own type."""
import gzip
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402

TEMPLATES = "/usr/share/mricron/templates"
AAL = f"{TEMPLATES}/aal.nii.gz"                       # uint8, 116 regions, RAS
AICHA = f"{TEMPLATES}/AICHAmc.nii.gz"                 # uint8, 192 regions, LAS
NEUROMAPS = f"{TEMPLATES}/inia19-NeuroMaps.nii.gz"     # int16 labels up to 1605, RAS

NRRD_TYPES = {"uchar": "u1", "unsigned char": "u1", "uint8": "u1", "uint8_t": "u1",
              "char": "i1", "signed char": "i1", "int8": "i1", "int8_t": "i1",
              "short": "i2", "int16": "i2", "int16_t": "i2", "signed short": "i2",
              "short int": "i2", "ushort": "u2", "unsigned short": "u2", "uint16": "u2",
              "uint16_t": "u2", "int": "i4", "int32": "i4", "int32_t": "i4", "signed int": "i4",
              "uint": "u4", "unsigned int": "u4", "uint32": "u4", "uint32_t": "u4",
              "float": "f4", "double": "f8"}
MET_TYPES = {"MET_UCHAR": "u1", "MET_CHAR": "i1", "MET_USHORT": "u2", "MET_SHORT": "i2",
             "MET_UINT": "u4", "MET_INT": "i4", "MET_FLOAT": "f4", "MET_DOUBLE": "f8"}


def read_nrrd(path):
    """(voxels [x, y, z], 4x4 LPS affine, dtype) of a .nrrd or .nhdr (raw or gzip)."""
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    magic, _, rest = raw.partition(b"\n")
    it.require(magic.startswith(b"NRRD000"), f"{path}: expected a NRRD magic, got {magic[:12]!r}")
    header, sep, payload = rest.partition(b"\n\n")
    fields = {}
    for line in header.decode("latin-1").splitlines():
        if line.startswith("#") or ":=" in line or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    it.require(int(fields["dimension"]) == 3, f"{path}: expected dimension 3, got {fields}")
    sizes = [int(v) for v in fields["sizes"].split()]
    dtype = np.dtype(NRRD_TYPES[fields["type"].lower()])
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder("<" if fields.get("endian", "little") == "little" else ">")
    data_file = fields.get("data file") or fields.get("datafile")
    if data_file:
        with open(os.path.join(os.path.dirname(path), data_file), "rb") as f:
            payload = f.read()
    encoding = fields.get("encoding", "raw").lower()
    if encoding in ("gzip", "gz"):
        payload = gzip.decompress(payload)
    else:
        it.require(encoding == "raw", f"{path}: unsupported encoding {encoding}")
    count = sizes[0] * sizes[1] * sizes[2]
    payload = payload[len(payload) - count * dtype.itemsize:]   # 'byte skip: -1' semantics
    data = np.frombuffer(payload, dtype=dtype).reshape(sizes[::-1]).transpose(2, 1, 0)
    space = fields.get("space", "").lower()
    flip = {"left-posterior-superior": [1, 1, 1], "lps": [1, 1, 1],
            "right-anterior-superior": [-1, -1, 1], "ras": [-1, -1, 1]}[space]
    vectors = [v.strip("() ") for v in fields["space directions"].split(")") if v.strip()]
    aff = np.eye(4)
    for axis, vec in enumerate(vectors):
        aff[:3, axis] = [float(c) for c in vec.split(",")]
    aff[:3, 3] = [float(c) for c in fields["space origin"].strip("() ").split(",")]
    aff = np.diag(flip + [1]) @ aff
    return data, aff, data.dtype.newbyteorder("=")


def read_metaimage(path):
    """(voxels [x, y, z], 4x4 LPS affine, dtype) of a .mha or .mhd (raw or zlib)."""
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    fields, offset = {}, 0
    for line in raw.split(b"\n"):
        offset += len(line) + 1
        key, _, value = line.decode("latin-1").partition("=")
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break
    it.require(fields.get("NDims") == "3", f"{path}: expected NDims = 3, got {fields}")
    sizes = [int(v) for v in fields["DimSize"].split()]
    dtype = np.dtype(MET_TYPES[fields["ElementType"]])
    if dtype.itemsize > 1:
        big = fields.get("BinaryDataByteOrderMSB", fields.get("ElementByteOrderMSB", "False"))
        dtype = dtype.newbyteorder(">" if big.lower() == "true" else "<")
    if fields["ElementDataFile"] == "LOCAL":
        payload = raw[offset:]
    else:
        with open(os.path.join(os.path.dirname(path), fields["ElementDataFile"]), "rb") as f:
            payload = f.read()
    if fields.get("CompressedData", "False").lower() == "true":
        payload = zlib.decompress(payload)
    count = sizes[0] * sizes[1] * sizes[2]
    data = np.frombuffer(payload[:count * dtype.itemsize], dtype=dtype)
    data = data.reshape(sizes[::-1]).transpose(2, 1, 0)
    spacing = [float(v) for v in fields["ElementSpacing"].split()]
    # MetaIO's TransformMatrix lists the axes' direction vectors one after another.
    matrix = [float(v) for v in fields.get("TransformMatrix", "1 0 0 0 1 0 0 0 1").split()]
    aff = np.eye(4)
    for axis in range(3):
        aff[:3, axis] = np.array(matrix[axis * 3:axis * 3 + 3]) * spacing[axis]
    aff[:3, 3] = [float(v) for v in fields.get("Offset", fields.get("Position", "0 0 0")).split()]
    return data, aff, data.dtype.newbyteorder("=")


def read_nifti_lps(path):
    import nibabel as nib
    import numpy as np
    img = nib.load(path)
    return (np.asanyarray(img.dataobj), np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine,
            img.get_data_dtype().newbyteorder("="))


def compare_lps(got, ref, what):
    """Same voxel order, values, type and LPS affine (1e-3 mm): conversion between formats must
    not reorient."""
    import numpy as np
    data, aff, dtype = got
    ref_data, ref_aff, ref_dtype = ref
    it.require(dtype == ref_dtype, f"{what}: expected pixel type {ref_dtype}, got {dtype}")
    it.require(data.shape == ref_data.shape,
               f"{what}: expected size {ref_data.shape}, got {data.shape}")
    err = float(np.abs(aff - ref_aff).max())
    it.require(err <= 1e-3, f"{what}: affine (LPS) differs by {err:g} mm\nexpected\n{ref_aff}\n"
                            f"got\n{aff}")
    n_bad = int((data != ref_data).sum())
    it.require(n_bad == 0, f"{what}: {n_bad} of {data.size} voxels differ")
    print(f"ok: {what}: {dtype} {data.shape}, affine within {err:.2g} mm, voxels identical")


def convert(args, src, name):
    out = os.path.join(args.work, name)
    proc = it.run_cajal(args.cajal, "convert", src, out)
    it.expect_exit(proc, 0, f"cajal convert {src} {name}")
    it.require(os.path.isfile(out), f"expected {out} written")
    return out


def writes_format(ext, reader):
    def case(args):
        series = os.path.join(args.data, "series", "kmeans")   # coronal: a non-trivial direction
        it.need_fixture(series)
        it.need_files(it.KMEANS_NII)
        import numpy as np
        out = convert(args, series, "kmeans" + ext)
        data, aff, dtype = it.load_canonical(it.KMEANS_NII)
        src = read_nifti_lps(it.KMEANS_NII)
        # The series' pixels are int16 (plastimatch), the source NIfTI's too.
        compare_lps(reader(out), (src[0].astype(np.int16), src[1], np.dtype(np.int16)),
                    f"kmeans series -> {ext}")
    return case


def conflicting_forms(src_path):
    """Many real NIfTIs carry a qform and an sform that disagree (here by 57-126 mm). nibabel,
    FSL, SPM and MRIcron use the sform when its code is set; whatever cajal reads, `convert`
    must not move the image for them: the output, read by nibabel, sits where the input did."""
    def case(args):
        import nibabel as nib
        import numpy as np
        it.need_files(src_path)
        hdr = nib.load(src_path).header
        it.require(not np.allclose(hdr.get_sform(), hdr.get_qform(), atol=1e-3),
                   f"expected {src_path}'s qform and sform to disagree (the point of this test)")
        out = convert(args, src_path, "out.nii.gz")
        compare_lps(read_nifti_lps(out), read_nifti_lps(src_path),
                    f"{os.path.basename(src_path)} (qform and sform disagree) -> .nii.gz")
    return case


def label_map(src_path, ext, reader, to_dtype=None):
    def case(args):
        import nibabel as nib
        import numpy as np
        it.need_files(src_path)
        src = src_path
        if to_dtype is not None:
            # A copy in to_dtype (e.g. uint16 from a real int16 map) with qform = sform: these
            # templates' qform and sform disagree, which nifti_conflicting_* tests on its own.
            img = nib.load(src_path)
            data = np.asanyarray(img.dataobj)
            it.require(data.min() >= 0, "expected non-negative labels")
            src = os.path.join(args.work, "labels_" + to_dtype + ".nii.gz")
            out_img = nib.Nifti1Image(data.astype(to_dtype), img.affine)
            out_img.set_qform(img.affine, code=1)
            out_img.set_sform(img.affine, code=1)
            nib.save(out_img, src)
        out = convert(args, src, "labels" + ext)
        compare_lps(reader(out), read_nifti_lps(src), f"{os.path.basename(src)} -> {ext}")
    return case


CASES = {
    "writes_nrrd_keeping_voxels_and_geometry": writes_format(".nrrd", read_nrrd),
    "writes_nhdr_keeping_voxels_and_geometry": writes_format(".nhdr", read_nrrd),
    "writes_mha_keeping_voxels_and_geometry": writes_format(".mha", read_metaimage),
    "writes_mhd_keeping_voxels_and_geometry": writes_format(".mhd", read_metaimage),
    "writes_nifti_uncompressed_keeping_voxels_and_geometry": writes_format(".nii", read_nifti_lps),
    "label_map_uint8_ras_to_nifti_exact": label_map(AAL, ".nii.gz", read_nifti_lps),
    "label_map_uint8_las_to_nifti_exact": label_map(AICHA, ".nii.gz", read_nifti_lps, "uint8"),
    "label_map_uint8_to_nrrd_exact": label_map(AAL, ".nrrd", read_nrrd),
    "label_map_uint16_to_nifti_exact": label_map(NEUROMAPS, ".nii.gz", read_nifti_lps, "uint16"),
    "label_map_uint16_to_mha_exact": label_map(NEUROMAPS, ".mha", read_metaimage, "uint16"),
    "nifti_conflicting_qform_sform_las_not_moved": conflicting_forms(AICHA),
    "nifti_conflicting_qform_sform_both_scanner_not_moved": conflicting_forms(NEUROMAPS),
}

if __name__ == "__main__":
    it.main(CASES)
