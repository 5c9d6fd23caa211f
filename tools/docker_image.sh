#!/usr/bin/env bash
# Builds the cajal Docker image from this tree and checks it. Idempotent; meant for CI and by hand.
#
#   tools/docker_image.sh [--keep] [--tag NAME:TAG]
#
#   1. installs docker.io and debootstrap from Debian's archive if they are missing (root);
#   2. starts dockerd if no daemon answers (--iptables=false --bridge=none --ip-forward=false, so
#      it touches no firewall or forwarding setting) and stops it again on exit;
#   3. makes debian:bookworm-slim with debootstrap when it is not present and cannot be pulled
#      (the recipe in ../shared/docker-offline.md; the image stays cached on this machine);
#   4. builds the image (default cajal:dev) with `docker build --network host --force-rm`;
#   5. runs `cajal --help`, `cajal --version` and `cajal info` on every sample in sample_data/,
#      and `cajal segment` on sample_data/ct with the bundled CT model, inside it, as its
#      non-root user, with no network;
#   6. prints the image size;
#   7. removes the image and its build stage unless --keep.
#
# Exit codes: 0 image built and checked; 1 failure (install, build, a check); 2 bad usage;
# 3 Docker cannot run on this machine (the message says why; dockerd's log is kept).
#
# Environment: CAJAL_DOCKER_JOBS (compile jobs in the image build, default 2),
# CAJAL_DOCKER_BUILD_TIMEOUT (seconds, default 3600), CAJAL_DOCKER_SAMPLES (space-separated paths
# under sample_data/ to run `cajal info` on, and no `cajal segment`; default: every volume file
# and folder in it).
set -euo pipefail

readonly BASE_IMAGE=debian:bookworm-slim
readonly BUILD_STAGE_LABEL=org.cajal.stage=build  # set on the Dockerfile's build stage
readonly RUNTIME_LABEL=org.opencontainers.image.title=cajal  # set on the image itself
readonly LOCK_FILE=/tmp/cajal-docker-image.lock
readonly NETNS_MOUNT=/run/docker/netns/default
# runc sometimes fails to start a container on a busy machine ("can't get final child's PID from
# pipe: EOF", opencontainers/runc#4905, moby/moby#40835). Not the project's fault: such failures
# are retried (a retried build reuses the layers already built).
readonly TRANSIENT_RUNC='OCI runtime create failed|failed to create shim task|runc create failed'

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag=cajal:dev
keep=0
jobs=${CAJAL_DOCKER_JOBS:-2}
build_timeout=${CAJAL_DOCKER_BUILD_TIMEOUT:-3600}

usage() { sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --tag) [ $# -ge 2 ] || { usage; exit 2; }; tag=$2; shift ;;
    --tag=*) tag=${1#--tag=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "docker_image.sh: unknown option '$1'" >&2; usage; exit 2 ;;
  esac
  shift
done

log() { printf '%s docker_image.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Docker itself cannot work here (no privileges, no kernel support, ...): a distinct exit code so
# that a caller can tell "this machine cannot run containers" from "the image is broken".
unavailable() { log "DOCKER UNAVAILABLE: $*"; exit 3; }

is_root() { [ "$(id -u)" = 0 ]; }
# The classic builder: the Dockerfile uses no BuildKit feature, and BuildKit may not be installed.
export DOCKER_BUILDKIT=0
docker_() { docker "$@" </dev/null; }
daemon_answers() { timeout 20 docker info >/dev/null 2>&1 </dev/null; }
# docker run --rm --network none ARGS..., retried on runc's transient failure; prints the output
# (stdout and stderr) and returns docker's status.
run_container() {
  local out attempt
  for attempt in 1 2 3; do
    if out=$(timeout 300 docker run --rm --network none "$@" </dev/null 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    if [ "$attempt" -lt 3 ] && grep -qE "$TRANSIENT_RUNC" <<<"$out"; then
      log "runc could not start a container (transient); trying again"
      sleep 2
      continue
    fi
    printf '%s\n' "$out"
    return 1
  done
}

# --- cleanup: only what this run made --------------------------------------------------------
dockerd_pid=""
dockerd_log=""
rootfs=""
declare -a timings=()
step_start=0
begin() { step_start=$(date +%s); log "== $*"; }
done_() { local s=$(( $(date +%s) - step_start )); timings+=("$(printf '%-28s %5ss' "$1" "$s")"); log "   $1: ${s}s"; }

stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  if kill -0 "$dockerd_pid" 2>/dev/null; then
    log "stopping the dockerd this script started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      log "dockerd (pid $dockerd_pid) did not stop in 30 s; killing it"
      kill -KILL "$dockerd_pid" 2>/dev/null || true
    fi
  fi
  wait "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=""
  # dockerd leaves this mount behind.
  if grep -q " $NETNS_MOUNT " /proc/mounts 2>/dev/null; then
    umount "$NETNS_MOUNT" 2>/dev/null || log "warning: could not umount $NETNS_MOUNT"
  fi
}

remove_rootfs() {
  [ -n "$rootfs" ] || return 0
  # debootstrap may leave proc/sys mounted inside the target if it was interrupted.
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v r="$rootfs/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r)
  rm -rf --one-file-system "$rootfs"
  rootfs=""
}

on_exit() {
  local rc=$?
  trap - EXIT
  remove_rootfs
  stop_dockerd
  if [ ${#timings[@]} -gt 0 ]; then
    log "step times:"
    local t; for t in "${timings[@]}"; do log "   $t"; done
  fi
  if [ "$rc" = 0 ]; then
    [ -z "$dockerd_log" ] || rm -f "$dockerd_log"
    log "OK"
  else
    [ -z "$dockerd_log" ] || log "dockerd's log is kept at $dockerd_log"
    log "FAILED (exit code $rc)"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# Two runs at once on one machine would stop each other's daemon or base image build: take turns.
exec 9>>"$LOCK_FILE"
if ! flock -n 9; then
  log "another docker_image.sh run holds $LOCK_FILE; waiting for it (at most 1 h)"
  flock -w 3600 9 || die "still locked after 1 h: $LOCK_FILE"
fi

log "repository: $repo; image: $tag"
[ -f "$repo/Dockerfile" ] || die "no Dockerfile in $repo"
[ -d "$repo/sample_data" ] || die "no sample_data/ in $repo"

# --- 1. tools ----------------------------------------------------------------------------------
begin "tools: docker client, dockerd, debootstrap"
pkgs=()
if ! command -v docker >/dev/null 2>&1; then
  pkgs+=(docker.io)
elif ! daemon_answers && ! command -v dockerd >/dev/null 2>&1; then
  pkgs+=(docker.io)
fi
command -v debootstrap >/dev/null 2>&1 || pkgs+=(debootstrap)
if [ ${#pkgs[@]} -gt 0 ]; then
  is_root || unavailable "${pkgs[*]} missing and installing needs root (run as root, or install them)"
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  log "installing ${pkgs[*]} (waits up to 10 min for another apt to finish)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
      --no-install-recommends "${pkgs[@]}" </dev/null; then
    log "install failed; updating the package lists and trying again"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update -q </dev/null ||
      die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
      --no-install-recommends "${pkgs[@]}" </dev/null || die "could not install ${pkgs[*]}"
  fi
fi
command -v docker >/dev/null 2>&1 || die "no docker client after installing docker.io"
done_ "tools"

# --- 2. daemon ---------------------------------------------------------------------------------
# Starts dockerd with the given extra options; returns 0 once it answers, 1 if it dies or hangs.
start_dockerd() {
  [ -n "$dockerd_log" ] || dockerd_log=$(mktemp /tmp/cajal-dockerd.XXXXXX.log)
  local from; from=$(( $(wc -l <"$dockerd_log") + 1 ))
  log "starting dockerd${*:+ $*} (log: $dockerd_log)"
  # 9>&-: the daemon must not inherit (and keep) this script's lock.
  dockerd --iptables=false --bridge=none --ip-forward=false "$@" \
    </dev/null >>"$dockerd_log" 2>&1 9>&- &
  dockerd_pid=$!
  for _ in $(seq 120); do
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      wait "$dockerd_pid" 2>/dev/null || true
      dockerd_pid=""
      { grep -q " $NETNS_MOUNT " /proc/mounts && umount "$NETNS_MOUNT"; } 2>/dev/null || true
      log "dockerd exited; last lines of its log:"
      tail -n "+$from" "$dockerd_log" | grep -E 'level=(error|fatal)|failed|Error' | tail -n 15 >&2 ||
        tail -n "+$from" "$dockerd_log" | tail -n 15 >&2
      return 1
    fi
    daemon_answers && { log "dockerd answers (pid $dockerd_pid)"; return 0; }
    sleep 0.5
  done
  log "dockerd (pid $dockerd_pid) does not answer after 60 s"
  stop_dockerd
  return 1
}

begin "daemon"
if daemon_answers; then
  log "a Docker daemon already answers; using it (it is left running)"
else
  is_root || unavailable "no Docker daemon answers and starting one needs root"
  command -v dockerd >/dev/null 2>&1 || unavailable "no Docker daemon answers and there is no dockerd"
  if pgrep -x dockerd >/dev/null; then
    log "a dockerd is running (pid $(pgrep -x dockerd | tr '\n' ' ')) but does not answer yet; waiting up to 60 s"
    for _ in $(seq 60); do daemon_answers && break; sleep 1; done
    daemon_answers || unavailable "a dockerd (pid $(pgrep -x dockerd | tr '\n' ' ')) is running but does not answer on its socket"
  elif start_dockerd; then
    :
  elif grep -qiE 'overlay|graphdriver|storage-driver' "$dockerd_log" && start_dockerd --storage-driver=vfs; then
    log "warning: overlay2 does not work here; using the vfs storage driver (slow, uses more disk)"
  else
    unavailable "dockerd does not start on this machine (see the log lines above and $dockerd_log)"
  fi
fi
done_ "daemon"

# --- 3. base image -----------------------------------------------------------------------------
make_base_image() {
  is_root || unavailable "making $BASE_IMAGE with debootstrap needs root"
  local sources=/etc/apt/sources.list.d/debian.sources mirror="" security=""
  if [ -r "$sources" ]; then
    mirror=$(awk '/^URIs:/ && !/security/ {print $2; exit}' "$sources")
    security=$(awk '/^URIs:/ && /security/ {print $2; exit}' "$sources")
  fi
  if [ -z "$mirror" ]; then
    mirror=http://deb.debian.org/debian
    log "warning: no mirror found in $sources; using $mirror"
  fi
  [ -n "$security" ] || security=http://deb.debian.org/debian-security
  rootfs=$(mktemp -d /var/tmp/cajal-rootfs.XXXXXX)
  local bootstrap_log; bootstrap_log=$(mktemp /tmp/cajal-debootstrap.XXXXXX.log)
  log "debootstrap --variant=minbase bookworm from $mirror (log: $bootstrap_log)"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" </dev/null >"$bootstrap_log" 2>&1; then
    tail -n 20 "$bootstrap_log" >&2
    die "debootstrap failed (log: $bootstrap_log)"
  fi

  # The host's mirrors, deb822 style like the official image.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # What makes the official image "-slim": dpkg leaves out documentation (but copyright),
  # man pages and translations, for every package installed from now on.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  # The official image's apt settings: no .deb cache or translations kept in layers.
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  # debootstrap takes only the bookworm suite; the official image also has the updates and
  # security fixes published since the last point release.
  log "applying bookworm-updates and bookworm-security to the new root file system"
  if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      chroot "$rootfs" sh -c \
      'apt-get -q -o Acquire::Retries=3 update && apt-get -y -q upgrade' \
      </dev/null >>"$bootstrap_log" 2>&1; then
    tail -n 20 "$bootstrap_log" >&2
    die "apt-get upgrade in the debootstrap root file system failed (log: $bootstrap_log)"
  fi
  rm -f "$bootstrap_log"
  # What debootstrap installed before the dpkg rules above existed.
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{groff,info,linda,locale,man}/* "$rootfs"/usr/share/lintian/overrides/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
  mkdir -p "$rootfs/var/lib/apt/lists/partial"
  # Docker provides these at run time; do not bake in the host's.
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"

  log "importing the root file system as $BASE_IMAGE"
  tar --numeric-owner -C "$rootfs" -c . |
    docker import --change 'CMD ["bash"]' \
      --message "debootstrap --variant=minbase bookworm $mirror (tools/docker_image.sh)" \
      - "$BASE_IMAGE" >/dev/null || die "docker import of the debootstrap root file system failed"
  remove_rootfs
}

begin "base image $BASE_IMAGE"
if docker_ image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE is present"
elif timeout 120 docker pull -q "$BASE_IMAGE" </dev/null >/dev/null 2>&1; then
  log "pulled $BASE_IMAGE"
else
  log "$BASE_IMAGE is not present and cannot be pulled; making it with debootstrap"
  make_base_image
fi
# Can this daemon start a container at all? (Fails here, not halfway through the build.)
if ! out=$(run_container "$BASE_IMAGE" true); then
  printf '%s\n' "$out" >&2
  unavailable "the daemon runs but cannot start a container (see the message above)"
fi
done_ "base image"

# --- 4. build ----------------------------------------------------------------------------------
begin "build $tag (docker build --network host, $jobs compile jobs)"
build_log=$(mktemp /tmp/cajal-docker-build.XXXXXX.log)
for attempt in 1 2 3; do
  status=0
  timeout "$build_timeout" docker build --network host --force-rm \
    --build-arg "JOBS=$jobs" -t "$tag" "$repo" </dev/null 2>&1 | tee "$build_log" || status=$?
  [ "$status" != 0 ] || break
  if [ "$attempt" -lt 3 ] && tail -n 5 "$build_log" | grep -qE "$TRANSIENT_RUNC"; then
    log "runc could not start a build container (transient); trying again ($((attempt + 1))/3)"
    sleep 5
    continue
  fi
  rm -f "$build_log"
  die "docker build failed (or took more than ${build_timeout}s); the output above says where"
done
rm -f "$build_log"
done_ "build"

# --- 5. run ------------------------------------------------------------------------------------
begin "run checks in $tag"
run_check() {
  local what=$1; shift
  local out
  if ! out=$(run_container "$tag" "$@"); then
    printf '%s\n' "$out" >&2
    die "'$what' failed in the image"
  fi
  [ -n "$out" ] || die "'$what' printed nothing"
  printf '%s\n' "$out" | sed 's/^/    | /' >&2
}
uid=$(run_container --entrypoint id "$tag" -u) || die "cannot run 'id -u' in the image: $uid"
[ "$uid" != 0 ] || die "the image runs as root; it must run as a non-root user"
log "runs as uid $uid"
run_check "cajal --help" --help
run_check "cajal --version" --version

samples=()
if [ -n "${CAJAL_DOCKER_SAMPLES:-}" ]; then
  read -r -a samples <<<"$CAJAL_DOCKER_SAMPLES"
else
  # What the image holds (the build context's sample_data/), not what the tree holds now.
  listing=$(run_container --entrypoint find "$tag" /opt/cajal/sample_data \
    -mindepth 1 -maxdepth 1 -printf '%y %f\n') || die "cannot list /opt/cajal/sample_data in the image"
  while read -r type name; do
    [ -n "$name" ] || continue
    case "$name" in
      *.nii|*.nii.gz|*.nrrd|*.nhdr|*.mha|*.mhd|*.dcm) samples+=("$name") ;;
      *) if [ "$type" = d ]; then samples+=("$name"); fi ;;
    esac
  done < <(printf '%s\n' "$listing" | sort)
fi
[ ${#samples[@]} -gt 0 ] || die "no sample in /opt/cajal/sample_data to run 'cajal info' on (is sample_data/ empty?)"
for s in "${samples[@]}"; do
  run_check "cajal info /opt/cajal/sample_data/$s" info "/opt/cajal/sample_data/$s"
done
done_ "run (${#samples[@]} samples)"
# The main job with the bundled CT model, as README's first command runs it outside Docker.
if [ -z "${CAJAL_DOCKER_SAMPLES:-}" ]; then
  run_check "cajal segment /opt/cajal/sample_data/ct (bundled CT model)" \
    segment /opt/cajal/sample_data/ct -o /home/cajal/out --threads 2
  # The bundled lesion classifier, on a 20 mm box of the same study.
  run_check "cajal classify /opt/cajal/sample_data/ct --center (bundled lesion classifier)" \
    classify /opt/cajal/sample_data/ct --center 0,0,0 --size 20 -o /home/cajal/classified \
    --threads 2 --no-png
fi

# --- 6. size -----------------------------------------------------------------------------------
size=$(docker_ image inspect -f '{{.Size}}' "$tag") || die "cannot inspect $tag"
log "image $tag size: $size bytes ($(( (size + 524288) / 1048576 )) MiB)"
echo "image $tag size: $size bytes ($(( (size + 524288) / 1048576 )) MiB)"

# --- 7. clean up -------------------------------------------------------------------------------
# Images of earlier runs that lost their tag (a rebuilt cajal:dev) are garbage in any case.
docker_ image prune -f --filter "label=$RUNTIME_LABEL" >/dev/null ||
  log "warning: could not remove untagged images of earlier builds"
if [ "$keep" = 1 ]; then
  log "keeping $tag and the build stage's layers (--keep)"
else
  begin "remove $tag"
  docker_ rmi "$tag" >/dev/null || die "could not remove $tag"
  # The build stage is an untagged image with the compilers and -dev packages (GBs): remove it
  # too, so that repeated runs do not fill the disk. The base image stays cached.
  docker_ image prune -f --filter "label=$BUILD_STAGE_LABEL" >/dev/null ||
    log "warning: could not remove the build stage's layers"
  done_ "remove"
fi
