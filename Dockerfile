# cajal on Debian 12, built from this tree. Runs as a non-root user; the sample data is inside.
#
#   tools/docker_image.sh                          build cajal:dev, check it, remove it (--keep)
#   docker build --network host -t cajal .         by hand (--network host: see below)
#   docker run --rm cajal info /opt/cajal/sample_data/...
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/data" -w /data cajal convert ct/ ct.nii.gz
#
# Plain Dockerfile on purpose: no "# syntax=" line and no BuildKit-only syntax, so the classic
# builder works; nothing is fetched from outside Debian's archive. A daemon started without a
# bridge (--bridge=none, as tools/docker_image.sh does) gives RUN no route out, hence
# `--network host` for the apt-get in the build stage.

# ---- build stage: compilers and -dev packages, the project's own dependency script ------------
FROM debian:bookworm-slim AS build
# tools/docker_image.sh removes this stage's layers after a run by this label.
LABEL org.cajal.stage=build
ARG DEBIAN_FRONTEND=noninteractive
ARG JOBS=2

# What the base image already has: the runtime stage starts from the same image, so it needs
# only the libraries that come from other packages (or newer versions of these).
RUN dpkg-query -W -f='${binary:Package} ${Version}\n' | sort >/base-packages.txt

WORKDIR /src
# The dependency script alone first, so the dependency layer is reused when only sources change.
COPY tools/install_deps.sh tools/install_deps.sh
RUN tools/install_deps.sh && rm -rf /var/lib/apt/lists/*

COPY . .
RUN cmake -S . -B build -G Ninja -DCAJAL_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && ninja -C build -j"$JOBS" cajal

# Stage /runtime: the stripped binary, and exactly the shared libraries it loads that the base
# image does not already provide (ldd's full transitive list, minus unchanged base packages),
# each with its package's copyright file.
#
# Why copy .so files instead of apt-get installing the runtime packages in the runtime stage:
# the packages bring far more than cajal loads. Measured on 2026-11-26: the 39 libraries cajal
# loads come from 10 packages, 47 with their dependencies (libinsighttoolkit5.2 ships every ITK
# module and depends on HDF5, NetCDF, MINC, FFTW, curl with Kerberos and LDAP, ...): about
# 130 MB installed, against 78 MB copied here (image: 158 MB instead of about 210 MB). ldd lists
# every library the dynamic loader opens for this binary, so the copy is complete as long as
# nothing is dlopen()ed by name; tools/docker_image.sh checks it by running cajal on every
# sample (DICOM and NIfTI) inside the image. Data files that the libraries read at run time are
# copied explicitly below (DCMTK's data dictionary).
# glibc (libc6) is never copied: the base image's loader and libc must stay a matching pair.
RUN set -eu; \
    multiarch=$(gcc -print-multiarch); \
    libdir=/runtime/usr/lib/$multiarch; \
    mkdir -p "$libdir" /runtime/usr/local/bin /runtime/usr/share/doc; \
    install -m 0755 -s build/apps/cajal /runtime/usr/local/bin/cajal; \
    if ldd build/apps/cajal | grep 'not found'; then echo "unresolved libraries" >&2; exit 1; fi; \
    ldd build/apps/cajal | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u >/tmp/libs.txt; \
    while read -r soname path; do \
      owner=""; \
      for p in "$path" "/usr${path#/usr}" "${path#/usr}" "$(readlink -f "$path")"; do \
        owner=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$owner" ] && break; \
      done; \
      if [ -n "$owner" ]; then \
        arch=$(dpkg-query -W -f='${Architecture}' "$owner"); \
        ver=$(dpkg-query -W -f='${Version}' "$owner"); \
        case "$owner" in libc6|libc6-*) continue ;; esac; \
        if grep -qxF -e "$owner:$arch $ver" -e "$owner $ver" /base-packages.txt; then continue; fi; \
        if [ -f "/usr/share/doc/$owner/copyright" ]; then \
          mkdir -p "/runtime/usr/share/doc/$owner"; \
          cp "/usr/share/doc/$owner/copyright" "/runtime/usr/share/doc/$owner/"; \
        fi; \
      fi; \
      echo "bundling $soname ($path, ${owner:-no package})"; \
      cp -L "$path" "$libdir/$soname"; \
    done </tmp/libs.txt; \
    for dcmdata in "$libdir"/libdcmdata.so.*; do \
      [ -e "$dcmdata" ] || continue; \
      dicts=$(strings -n 8 "$dcmdata" | grep -m 1 -E '^/[^ ]+\.dic(:/[^ ]+\.dic)*$'); \
      [ -n "$dicts" ] || { echo "no dictionary path in $dcmdata" >&2; exit 1; }; \
      for dict in $(echo "$dicts" | tr ':' ' '); do \
        echo "bundling $dict (DCMTK reads its data dictionary at run time)"; \
        mkdir -p "/runtime$(dirname "$dict")"; cp "$dict" "/runtime$dict"; \
      done; \
    done; \
    du -sh /runtime

# The samples and the bundled models (where `cajal segment` and `cajal classify` without --model
# look for them: <bin>/../share/cajal/models/<name>), readable by the image's user whatever their
# modes in the tree (COPY keeps modes). Only the files a model folder needs, not its training log.
RUN mkdir -p /samples/opt/cajal /samples/usr/local/share/cajal/models/ct-organs \
             /samples/usr/local/share/cajal/models/lesion-classifier \
             /samples/usr/local/share/cajal/models/brain-mask \
 && cp -R sample_data /samples/opt/cajal/sample_data \
 && cp models/ct-organs/model.json models/ct-organs/weights.safetensors \
       models/ct-organs/card.json /samples/usr/local/share/cajal/models/ct-organs/ \
 && cp models/lesion-classifier/model.json models/lesion-classifier/weights.safetensors \
       models/lesion-classifier/card.json models/lesion-classifier/calibration.json \
       /samples/usr/local/share/cajal/models/lesion-classifier/ \
 && cp models/brain-mask/model.json models/brain-mask/weights.safetensors \
       models/brain-mask/card.json /samples/usr/local/share/cajal/models/brain-mask/ \
 && chmod -R u=rwX,go=rX /samples/opt/cajal/sample_data /samples/usr/local/share/cajal

# ---- runtime stage: the base image, the binary, its libraries, the samples ---------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
LABEL org.opencontainers.image.title="cajal" \
      org.opencontainers.image.description="cajal medical-imaging pipeline (Debian 12)"

COPY --from=build /runtime/ /
# A fixed numeric uid so that orchestrators can check "runs as non-root" without /etc/passwd.
RUN ldconfig \
 && useradd --uid 10001 --user-group --create-home --home-dir /home/cajal \
      --shell /usr/sbin/nologin cajal \
 && cajal --version
COPY --from=build /samples/ /

USER 10001:10001
WORKDIR /home/cajal
ENTRYPOINT ["cajal"]
CMD ["--help"]
