#!/usr/bin/env python3
"""Mutates real input files one field at a time and checks that cajal never aborts or crashes on
them: every run of `cajal info` and `cajal convert` (and `cajal model inspect` for model folders)
must exit 0 or 1, never with a signal, exit 2 (cajal's own internal error) or a hang.

Debian builds GDCM and ITK with their assertions on, so a file they do not expect ends the
process (and a batch of `cajal segment` with it); cajal refuses such files from their headers
first. This script is how those headers were found (2026-11-27) and how to look for more:

  dicom       pydicom's test files (those cajal reads), one Image Pixel or geometry attribute at
              a time deleted or set to an odd value (0, -1, NaN, wrong counts, other classes)
  codestream  the same files' pixel data cut, padded or flipped, Rows/Columns doubled or 1, the
              bit layout changed (compressed ones reach GDCM's JPEG, JPEG-LS and JPEG 2000 codecs)
  volume      a small NIfTI-1 (.nii and .nii.gz), MetaImage and NRRD, every header field in turn
  model       models/lenet5-fashion-mnist with its safetensors header changed byte by byte,
              its length field, truncations, and values put into model.json

  /usr/bin/python3 tools/fuzz_inputs.py [--cajal build/apps/cajal] [--work DIR]
      [dicom] [codestream] [volume] [model]

Prints each failure and a count per group; exits 1 when there was one. About 20 minutes for all
groups on 2 cores (dicom is most of it). Needs python3-pydicom and python3-numpy.
"""
import argparse
import gzip
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYDICOM_TEST_FILES = "/usr/lib/python3/dist-packages/pydicom/data/test_files"


class Runner:
    def __init__(self, cajal, work):
        self.cajal, self.work = cajal, work
        self.runs = self.failures = 0

    def check(self, label, *commands, timeout=30):
        for command in commands:
            self.runs += 1
            try:
                proc = subprocess.run([self.cajal, *command], capture_output=True, text=True,
                                      timeout=timeout)
            except subprocess.TimeoutExpired:
                self.failures += 1
                print(f"HANG after {timeout} s: {label}: cajal {command[0]}", flush=True)
                continue
            if proc.returncode not in (0, 1) or "terminate called" in proc.stderr:
                self.failures += 1
                print(f"EXIT {proc.returncode}: {label}: cajal {command[0]}: "
                      f"{proc.stderr.strip()[-300:]!r}", flush=True)

    def check_file(self, label, path):
        self.check(label, ["info", path], ["convert", path, os.path.join(self.work, "out.nii.gz")])


def readable_dicom_files(runner):
    files = []
    for folder, _, names in sorted(os.walk(PYDICOM_TEST_FILES)):
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.endswith((".py", ".pyc", ".json", ".txt", ".gz", ".bz2")):
                continue
            proc = subprocess.run([runner.cajal, "info", path], capture_output=True, timeout=60)
            if proc.returncode == 0:
                files.append(path)
    return files


def fuzz_dicom(runner, files):
    import pydicom
    from pydicom.datadict import dictionary_VR
    odd = {
        (0x0028, 0x0002): [0, 3, 4],  # SamplesPerPixel
        (0x0028, 0x0004): ["", "RGB", "PALETTE COLOR", "MONOCHROME1", "YBR_FULL"],
        (0x0028, 0x0008): ["0", "-1", "2", "1000", ""],  # NumberOfFrames
        (0x0028, 0x0009): ["AT"],  # FrameIncrementPointer -> GridFrameOffsetVector
        (0x0028, 0x0010): [0, 1, 65535],  # Rows
        (0x0028, 0x0011): [0, 1],  # Columns
        (0x0028, 0x0030): ["", "0\\0", "-1\\1", "abc", "1", "1\\1\\1", "nan\\1"],
        (0x0028, 0x0100): [0, 1, 12, 64],  # BitsAllocated
        (0x0028, 0x0101): [0, 17, 40],  # BitsStored
        (0x0028, 0x0102): [0, 40],  # HighBit
        (0x0028, 0x0103): [2],  # PixelRepresentation
        (0x0028, 0x0006): [1, 5],  # PlanarConfiguration
        (0x0028, 0x1050): ["x"],  # WindowCenter
        (0x0028, 0x1052): ["nan", "x", ""],  # RescaleIntercept
        (0x0028, 0x1053): ["0", "nan", "1e308", ""],  # RescaleSlope
        (0x0020, 0x0032): ["", "1\\2", "nan\\0\\0", "a\\b\\c"],  # ImagePositionPatient
        (0x0020, 0x0037): ["", "0\\0\\0\\0\\0\\0", "1\\0\\0\\1\\0\\0", "1\\0\\0"],
        (0x0018, 0x0050): ["0", "-5", "nan"],  # SliceThickness
        (0x0018, 0x0088): ["0", "-5"],  # SpacingBetweenSlices
        (0x0008, 0x0016): ["1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.4.1"],
        (0x0008, 0x0060): ["RTDOSE", ""],  # Modality
        (0x0020, 0x000E): [""],  # SeriesInstanceUID
    }
    out = os.path.join(runner.work, "mutated.dcm")
    for path in files:
        for tag, values in odd.items():
            for value in [None] + values:
                ds = pydicom.dcmread(path)
                try:
                    if value is None:
                        if tag not in ds:
                            continue
                        del ds[tag]
                    elif value == "AT":
                        ds.add_new(tag, "AT", [(0x3004, 0x000C)])
                    elif tag in ds:
                        ds[tag].value = value
                    else:
                        ds.add_new(tag, dictionary_VR(tag), value)
                    ds.save_as(out, write_like_original=True)
                except Exception:
                    continue  # pydicom cannot write this one
                runner.check_file(f"{os.path.basename(path)} {tag} = {value!r}", out)


def fuzz_codestream(runner, files):
    import pydicom
    out = os.path.join(runner.work, "mutated.dcm")
    for path in files:
        try:
            raw = pydicom.dcmread(path).PixelData
        except Exception:
            continue
        mutations = [(f"pixel data cut to {f:.0%}",
                      lambda ds, f=f: setattr(ds, "PixelData", raw[:int(len(raw) * f) // 2 * 2]))
                     for f in (0.0, 0.1, 0.5, 0.99)]
        mutations += [
            ("pixel data padded", lambda ds: setattr(ds, "PixelData", raw + b"\x00\xff" * 64)),
            ("first 64 bytes flipped",
             lambda ds: setattr(ds, "PixelData", bytes(b ^ 0x5A for b in raw[:64]) + raw[64:])),
            ("Rows doubled", lambda ds: setattr(ds, "Rows", ds.Rows * 2)),
            ("Columns doubled", lambda ds: setattr(ds, "Columns", ds.Columns * 2)),
            ("Rows 1", lambda ds: setattr(ds, "Rows", 1)),
            ("HighBit 0", lambda ds: setattr(ds, "HighBit", 0)),
            ("PixelRepresentation flipped",
             lambda ds: setattr(ds, "PixelRepresentation", 1 - ds.PixelRepresentation)),
            ("8 bits", lambda ds: (setattr(ds, "BitsAllocated", 8), setattr(ds, "BitsStored", 8),
                                   setattr(ds, "HighBit", 7))),
            ("NumberOfFrames 2", lambda ds: setattr(ds, "NumberOfFrames", 2)),
        ]
        for label, mutate in mutations:
            ds = pydicom.dcmread(path)
            try:
                mutate(ds)
                ds.save_as(out, write_like_original=True)
            except Exception:
                continue
            runner.check_file(f"{os.path.basename(path)}: {label}", out)


def nifti(dims=(20, 18, 10), dim0=3, datatype=4, bitpix=16, pixdim=(1.0, 1.0, 2.0), vox=352.0,
          qform=1, sform=1, quatern=(0.0, 0.0, 0.0), srow=None, scl=(0.0, 0.0), data=None):
    import numpy as np
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    d = ([dim0] + list(dims) + [1] * 7)[:8]
    struct.pack_into("<8h", h, 40, *d)
    struct.pack_into("<2h", h, 70, datatype, bitpix)
    struct.pack_into("<4f", h, 76, 1.0, *pixdim)
    struct.pack_into("<f", h, 108, vox)
    struct.pack_into("<2f", h, 112, *scl)
    struct.pack_into("<2h", h, 252, qform, sform)
    struct.pack_into("<3f", h, 256, *quatern)
    srow = srow or [pixdim[0], 0, 0, 0, 0, pixdim[1], 0, 0, 0, 0, pixdim[2], 0]
    struct.pack_into("<12f", h, 280, *srow)
    h[344:348] = b"n+1\0"
    if data is None:
        count = 1
        for n in dims:
            count *= max(n, 0)
        data = (np.arange(count) % 300).astype("<i2").tobytes()
    return bytes(h) + b"\0" * 4 + data


def fuzz_volume(runner):
    import numpy as np
    nan, inf = float("nan"), float("inf")
    n = 20 * 18 * 10
    cases = {
        "as written": nifti(), "dim0 0": nifti(dim0=0), "dim0 8": nifti(dim0=8),
        "dim0 -1": nifti(dim0=-1), "dim x 0": nifti(dims=(0, 18, 10)),
        "dim x -5": nifti(dims=(-5, 18, 10)),
        "32767^3": nifti(dims=(32767, 32767, 32767), data=b"\0" * 100),
        "datatype 0": nifti(datatype=0), "datatype 2048": nifti(datatype=2048),
        "RGB": nifti(datatype=128, bitpix=24), "complex": nifti(datatype=32, bitpix=64),
        "bitpix 8": nifti(bitpix=8), "pixdim 0": nifti(pixdim=(0.0, 0.0, 0.0)),
        "pixdim -1": nifti(pixdim=(-1.0, 1.0, 1.0)), "pixdim NaN": nifti(pixdim=(nan, 1.0, 1.0)),
        "pixdim inf": nifti(pixdim=(inf, 1.0, 1.0)), "vox_offset 0": nifti(vox=0.0),
        "vox_offset 1e9": nifti(vox=1e9), "vox_offset NaN": nifti(vox=nan),
        "vox_offset 100": nifti(vox=100.0), "data cut short": nifti(data=b"\0" * 100),
        "quaternion 5": nifti(sform=0, quatern=(5.0, 5.0, 5.0)),
        "quaternion NaN": nifti(sform=0, quatern=(nan, 0.0, 0.0)),
        "sform zero": nifti(qform=0, srow=[0.0] * 12),
        "sform NaN": nifti(qform=0, srow=[nan, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]),
        "scl_slope NaN": nifti(scl=(nan, 0.0)), "scl_slope inf": nifti(scl=(inf, 1.0)),
        "4D": nifti(dim0=4, dims=(20, 18, 10, 3), data=np.zeros(n * 3, "<i2").tobytes()),
        "5D": nifti(dim0=5, dims=(20, 18, 10, 1, 3), data=np.zeros(n * 3, "<i2").tobytes()),
        "float NaN": nifti(datatype=16, bitpix=32, data=np.full(n, np.nan, "<f4").tobytes()),
        "float inf": nifti(datatype=16, bitpix=32, data=np.full(n, np.inf, "<f4").tobytes()),
        "float64": nifti(datatype=64, bitpix=64, data=np.ones(n, "<f8").tobytes()),
        "header only": nifti()[:348], "sizeof_hdr 256": struct.pack("<i", 256) + nifti()[4:],
    }
    for label, blob in cases.items():
        for extension in (".nii", ".nii.gz"):
            path = os.path.join(runner.work, "mutated" + extension)
            with (gzip.open(path, "wb") if extension.endswith(".gz") else open(path, "wb")) as f:
                f.write(blob)
            runner.check_file(f"NIfTI{extension} {label}", path)
    pixels = np.zeros(n, "<i2").tobytes()
    odd = ["", "0", "-1", "nan", "a b c", "99999 99999 99999", "1 1", "1 0 0 0 0 0 0 0 0",
           "MET_UNKNOWN", "MET_FLOAT", "2", "5"]
    mha = ["ObjectType = Image", "NDims = 3", "DimSize = 20 18 10", "ElementType = MET_SHORT",
           "ElementSpacing = 1 1 2", "Offset = 0 0 0", "TransformMatrix = 1 0 0 0 1 0 0 0 1"]
    path = os.path.join(runner.work, "mutated.mha")
    for i, line in enumerate(mha):
        key = line.split(" =")[0]
        for value in odd:
            lines = mha[:i] + [f"{key} = {value}"] + mha[i + 1:]
            with open(path, "wb") as f:
                f.write(("\n".join(lines) + "\nElementDataFile = LOCAL\n").encode() + pixels)
            runner.check_file(f"MetaImage {key} = {value!r}", path)
    nrrd = ["NRRD0004", "type: short", "dimension: 3", "space: left-posterior-superior",
            "sizes: 20 18 10", "space directions: (1,0,0) (0,1,0) (0,0,2)",
            "kinds: domain domain domain", "endian: little", "encoding: raw",
            "space origin: (0,0,0)"]
    path = os.path.join(runner.work, "mutated.nrrd")
    for i, line in enumerate(nrrd[1:], 1):
        key = line.split(":")[0]
        for value in odd[:6] + ["(nan,0,0) (0,1,0) (0,0,1)", "(0,0,0) (0,0,0) (0,0,0)", "gzip",
                                "bzip2", "block", "4"]:
            lines = nrrd[:i] + [f"{key}: {value}"] + nrrd[i + 1:]
            with open(path, "wb") as f:
                f.write(("\n".join(lines) + "\n\n").encode() + pixels)
            runner.check_file(f"NRRD {key}: {value!r}", path)


def fuzz_model(runner):
    source = os.path.join(REPO, "models", "lenet5-fashion-mnist")
    folder = os.path.join(runner.work, "model")
    rng = random.Random(7)

    def fresh():
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name in ("model.json", "weights.safetensors", "card.json"):
            shutil.copy(os.path.join(source, name), folder)

    def inspect(label):
        runner.check(label, ["model", "inspect", folder])

    weights = open(os.path.join(source, "weights.safetensors"), "rb").read()
    header_length = struct.unpack("<Q", weights[:8])[0]
    for _ in range(100):
        fresh()
        changed = bytearray(weights)
        at = 8 + rng.randrange(header_length)
        changed[at] = rng.randrange(256)
        open(os.path.join(folder, "weights.safetensors"), "wb").write(bytes(changed))
        inspect(f"safetensors header byte {at} changed")
    for length in (0, 1, 7, header_length - 1, header_length + 1, len(weights), 2**32, 2**63,
                   2**64 - 1):
        fresh()
        open(os.path.join(folder, "weights.safetensors"), "wb").write(
            struct.pack("<Q", length) + weights[8:])
        inspect(f"safetensors header length {length}")
    for cut in (0, 4, 8, 20, 8 + header_length, 8 + header_length + 10, len(weights) - 4):
        fresh()
        open(os.path.join(folder, "weights.safetensors"), "wb").write(weights[:cut])
        inspect(f"safetensors cut at {cut}")
    spec = json.load(open(os.path.join(source, "model.json")))

    def paths(node, prefix=()):
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else [])
        for key, value in items:
            yield prefix + (key,)
            yield from paths(value, prefix + (key,))

    every = list(paths(spec))
    for _ in range(250):
        fresh()
        changed = json.loads(json.dumps(spec))
        where = rng.choice(every)
        parent = changed
        for key in where[:-1]:
            parent = parent[key]
        value = rng.choice([0, -1, 2**31, 2**62, -2**62, 1e308, "x", None, [], {}, 0.5, True,
                            [1, 2, 3], "relu"])
        parent[where[-1]] = value
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(changed, f)
        inspect(f"model.json {list(where)} = {value!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cajal", default=os.path.join(REPO, "build", "apps", "cajal"))
    parser.add_argument("--work", default=os.path.join(REPO, "out", "fuzz-inputs"))
    parser.add_argument("groups", nargs="*", default=["dicom", "codestream", "volume", "model"],
                        choices=["dicom", "codestream", "volume", "model"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydicom warns of every odd value it is asked to write
    os.makedirs(args.work, exist_ok=True)
    runner = Runner(os.path.abspath(args.cajal), args.work)
    files = readable_dicom_files(runner) if {"dicom", "codestream"} & set(args.groups) else []
    for group in args.groups:
        runs, failures = runner.runs, runner.failures
        if group == "dicom":
            fuzz_dicom(runner, files)
        elif group == "codestream":
            fuzz_codestream(runner, files)
        elif group == "volume":
            fuzz_volume(runner)
        else:
            fuzz_model(runner)
        print(f"{group}: {runner.runs - runs} runs, {runner.failures - failures} failures",
              flush=True)
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
