"""`cajal info --json` describes volumes as nibabel describes their source: size, spacing,
origin and direction (LPS), orientation code, pixel type, intensity range."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import it_common as it  # noqa: E402


def expected_from_nibabel(nifti):
    """What the source NIfTI says, in the JSON's terms: LPS geometry, voxel order as stored
    (plastimatch keeps it, and a DICOM series' third axis is row x column, the same here)."""
    import nibabel as nib
    import numpy as np
    img = nib.load(nifti)
    ras = img.affine
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ras
    spacing = np.array(img.header.get_zooms()[:3], dtype=float)
    data = np.asanyarray(img.dataobj)
    return {
        "size": list(img.shape[:3]),
        "spacing": spacing,
        "origin": lps[:3, 3],
        "direction": (lps[:3, :3] / spacing).reshape(-1),   # row-major, column c = axis c
        "orientation": "".join(nib.aff2axcodes(ras)),
        "range": [float(data.min()), float(data.max())],
        "dtype": str(img.get_data_dtype()),
    }


def check_volume(volume, exp, what, pixel_type):
    import numpy as np
    it.require(volume.get("size") == exp["size"],
               f"{what}: expected size {exp['size']}, got {volume.get('size')}")
    for key in ("spacing", "origin", "direction"):
        got = np.array(volume.get(key, []), dtype=float)
        it.require(got.shape == exp[key].shape and np.allclose(got, exp[key], atol=1e-3),
                   f"{what}: expected {key} {np.round(exp[key], 4).tolist()}, got "
                   f"{volume.get(key)}")
    it.require(volume.get("orientation") == exp["orientation"],
               f"{what}: expected orientation {exp['orientation']} (nibabel's code for the "
               f"source), got {volume.get('orientation')!r}")
    it.require(volume.get("pixel_type") == pixel_type,
               f"{what}: expected pixel_type {pixel_type}, got {volume.get('pixel_type')!r}")
    got_range = [float(v) for v in volume.get("intensity_range", [])]
    it.require(got_range == exp["range"],
               f"{what}: expected intensity_range {exp['range']}, got {got_range}")


def info_json(args, path):
    proc = it.run_cajal(args.cajal, "info", path, "--json")
    it.expect_exit(proc, 0, f"cajal info {path} --json")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise it.Fail(f"cajal info --json printed invalid JSON on stdout: {e}")


def series_geometry(name):
    def case(args):
        it.need_tools("plastimatch")
        folder = os.path.join(args.data, "series", name)
        it.need_fixture(folder)
        info = info_json(args, folder)
        exp = expected_from_nibabel(it.SOURCES[name])
        it.require(info.get("kind") == "dicom_folder",
                   f"expected kind 'dicom_folder', got {info.get('kind')!r}")
        series = info.get("series", [])
        it.require(len(series) == 1, f"expected 1 series, got {len(series)}")
        uid = it.series_uid(folder)
        it.require(series[0].get("series_uid") == uid,
                   f"expected series_uid {uid}, got {series[0].get('series_uid')!r}")
        it.require(series[0].get("size") == exp["size"],
                   f"expected series size {exp['size']}, got {series[0].get('size')}")
        it.require(series[0].get("image_count") == exp["size"][2],
                   f"expected image_count {exp['size'][2]}, got {series[0].get('image_count')}")
        volume = info.get("volume")
        it.require(isinstance(volume, dict), "expected the only series read and described "
                                             "under 'volume'")
        it.require(volume.get("series_uid") == uid, f"expected volume.series_uid {uid}")
        # plastimatch stores signed 16-bit without rescale: int16.
        check_volume(volume, exp, f"{name} series", "int16")
    return case


def volume_file_ch2(args):
    it.need_files(it.CH2_NII)
    info = info_json(args, it.CH2_NII)
    it.require(info.get("kind") == "volume_file",
               f"expected kind 'volume_file', got {info.get('kind')!r}")
    exp = expected_from_nibabel(it.CH2_NII)
    check_volume(info.get("volume") or {}, exp, "ch2.nii.gz", exp["dtype"])


def volume_file_kmeans(args):
    it.need_files(it.KMEANS_NII)
    info = info_json(args, it.KMEANS_NII)
    exp = expected_from_nibabel(it.KMEANS_NII)
    check_volume(info.get("volume") or {}, exp, "KmeansTest (coronal)", exp["dtype"])


CASES = {
    "json_ch2_series_matches_source": series_geometry("ch2"),
    "json_kmeans_coronal_series_matches_source": series_geometry("kmeans"),
    "json_ch2_nifti_matches_nibabel": volume_file_ch2,
    "json_kmeans_nifti_matches_nibabel": volume_file_kmeans,
}

if __name__ == "__main__":
    it.main(CASES)
