#!/usr/bin/env bash
# The image in use, as CI runs it: build it (deploy/image/build.sh, reusing
# target/release/replicanary when it is there), print its size, then run it with podman on
# this machine's network — `--version`, and `check` against a lab started here with the
# `healthy` scenario, which must exit 0. Everything is bounded in time and stops by itself;
# the lab is stopped on any exit. The OCI archive is also loaded into an empty storage
# (what another machine's `podman load` does) and run from there.
# Arguments go to build.sh (e.g. `--binary PATH`).
#
# In CI (CI set) a missing buildah or podman is a failure; elsewhere the step is skipped.
# podman runs with runc and explicit ulimits: Debian's podman defaults to crun (not
# installed) and, in a container like CI's, to limits the runtime cannot set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=scripts/in_ci.sh
source scripts/in_ci.sh
for tool in buildah podman runc; do
    if ! command -v "$tool" >/dev/null; then
        if in_ci; then
            echo "FAIL: $tool not found (apt-get install buildah podman runc)" >&2
            exit 1
        fi
        echo "SKIPPED: $tool not found (apt-get install buildah podman runc); CI would fail"
        exit 0
    fi
done

t0=$SECONDS
elapsed() { echo "($((SECONDS - t0)) s so far)"; }
work="$(mktemp -d "${TMPDIR:-/tmp}/replicanary-image.XXXXXX")"
lab_pid=
cleanup() {
    if [[ -n "$lab_pid" ]]; then kill -TERM "$lab_pid" 2>/dev/null || true; wait "$lab_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
image="$(sed -n 's/^IMAGE_NAME=//p' deploy/image/build.sh):$version"
archive=target/image/replicanary-$version.oci.tar
mkdir -p target/image

echo "--> build the image"
bash deploy/image/build.sh --archive "$archive" "$@"
size="$(podman image inspect --format '{{.Size}}' "$image")"
echo "image $image: $size bytes in the local storage ($((size / 1024 / 1024)) MiB), OCI archive $(stat -c %s "$archive") bytes $(elapsed)"

run=(timeout 120 podman run --rm --runtime runc --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network host)

echo "--> podman run $image --version"
got="$("${run[@]}" "$image" --version </dev/null)"
[[ "$got" == "replicanary $version" ]] || { echo "FAIL: --version said '$got'" >&2; exit 1; }
echo "$got $(elapsed)"

echo "--> podman load the OCI archive into an empty storage, and run --version from there"
fresh=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
"${fresh[@]}" load --quiet -i "$archive"
got="$(timeout 120 "${fresh[@]}" run --rm --runtime runc --ulimit nofile=20000:20000 \
    --ulimit nproc=4096:4096 --network host "$image" --version </dev/null)"
[[ "$got" == "replicanary $version" ]] || { echo "FAIL: the loaded archive said '$got'" >&2; exit 1; }
"${fresh[@]}" rmi --all --force >/dev/null
echo "$got (from the archive) $(elapsed)"

echo "--> a lab with the healthy scenario on 127.0.0.1"
bash tests/lab/setup.sh >/dev/null
py=tests/lab/.venv/bin/python
port="$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
config="$work/replicanary.yaml"
$py tests/lab/lab.py up --port "$port" --out "$config" --scenarios healthy --suffix=-image \
    >"$work/lab.log" 2>&1 </dev/null &
lab_pid=$!
for _ in $(seq 1 600); do [[ -s "$config" ]] && break; sleep 0.1; done
[[ -s "$config" ]] || { echo "FAIL: the lab did not come up:" >&2; cat "$work/lab.log" >&2; exit 1; }
chmod a+r "$config"

echo "--> podman run $image check (as uid $(sed -n 's/^USER //p' deploy/Dockerfile), config mounted read-only)"
"${run[@]}" \
    -v "$config:/etc/replicanary/config.yaml:ro" \
    -e AWS_ACCESS_KEY_ID=333333333333 -e AWS_SECRET_ACCESS_KEY=test \
    -e AWS_EC2_METADATA_DISABLED=true \
    "$image" check --config /etc/replicanary/config.yaml </dev/null
echo "ok: the image's check exited 0 $(elapsed)"
