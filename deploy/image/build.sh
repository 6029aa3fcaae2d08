#!/usr/bin/env bash
# Builds replicanary's OCI image FROM scratch with buildah, from files of this machine: the
# release binary, the shared libraries it links (as `ldd` lists them, the loader included),
# the CA certificates, a passwd/group naming the non-root user, and /tmp. No base image and
# no registry: it works where only Debian's packages can be installed.
#
# What the image promises — its user, port, entrypoint, default command and binary path —
# is read from deploy/Dockerfile (the build for users with registry access), and the built
# image's configuration is compared with it before the script succeeds: the two agree by
# construction and by check.
#
#   deploy/image/build.sh [--binary PATH] [--archive FILE.tar]
#
# --binary   the binary to package (default target/release/replicanary, built with
#            `cargo build --release --locked` when absent)
# --archive  also write the image as an OCI archive (`podman load -i FILE`, `skopeo copy
#            oci-archive:FILE ...`, `kind load image-archive FILE`)
#
# The image is tagged IMAGE_NAME:<version of Cargo.toml> in the local containers storage,
# the reference the Kubernetes manifests use. Needs root (or a user namespace) and buildah.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

IMAGE_NAME=ghcr.io/replicanary/replicanary
DOCKERFILE=deploy/Dockerfile
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

binary=target/release/replicanary
archive=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --archive) archive="$2"; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--archive FILE.tar]" >&2; exit 2 ;;
    esac
done

fail() { echo "deploy/image/build.sh: $*" >&2; exit 1; }
command -v buildah >/dev/null || fail "buildah not found (apt-get install buildah)"
[[ -f "$CA_BUNDLE" ]] || fail "$CA_BUNDLE not found (apt-get install ca-certificates)"

# --- what the Dockerfile's final stage promises -------------------------------------------
# One line each; the JSON arrays are passed to buildah as they are written.
dockerfile_value() {
    local v
    v="$(sed -n "s/^$1 //p" "$DOCKERFILE")"
    [[ -n "$v" && "$(wc -l <<<"$v")" -eq 1 ]] || fail "$DOCKERFILE: expected exactly one $1 line"
    printf '%s' "$v"
}
user="$(dockerfile_value USER)"             # 65532:65532
port="$(dockerfile_value EXPOSE)"           # 9879
entrypoint="$(dockerfile_value ENTRYPOINT)" # ["/usr/local/bin/replicanary"]
cmd="$(dockerfile_value CMD)"
# The binary's path in the image: the destination of the COPY of the built binary.
bin_path="$(sed -n 's#^COPY --from=build [^ ]* \(/[^ ]*\)$#\1#p' "$DOCKERFILE")"
[[ -n "$bin_path" ]] || fail "$DOCKERFILE: no 'COPY --from=build <src> <absolute path>' line"
[[ "$entrypoint" == "[\"$bin_path\"]" ]] || fail "$DOCKERFILE: ENTRYPOINT $entrypoint is not [\"$bin_path\"]"
[[ "$user" =~ ^([0-9]+):([0-9]+)$ ]] || fail "$DOCKERFILE: USER $user is not uid:gid"
uid="${BASH_REMATCH[1]}"
gid="${BASH_REMATCH[2]}"
[[ "$port" =~ ^[0-9]+$ ]] || fail "$DOCKERFILE: EXPOSE $port is not one port"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[[ -n "$version" ]] || fail "no version in Cargo.toml"
image="$IMAGE_NAME:$version"

# --- the binary -----------------------------------------------------------------------------
if [[ ! -x "$binary" ]]; then
    [[ "$binary" == target/release/replicanary ]] || fail "$binary is not an executable file"
    echo "building $binary (cargo build --release --locked)"
    cargo build --release --locked --quiet
fi
reported="$("$binary" --version)"
[[ "$reported" == "replicanary $version" ]] || fail "$binary says '$reported', Cargo.toml says $version"

# --- the image ------------------------------------------------------------------------------
ctr="$(buildah from --quiet scratch)"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
root="$(buildah mount "$ctr")"

install -D -m 0755 "$binary" "$root$bin_path"
# Every library the binary links, at the path the loader looks for it (symlinks resolved:
# /lib64/ld-linux-x86-64.so.2 is the loader the binary names).
libs="$(ldd "$binary" | grep -o '/[^ )]*' | sort -u)"
[[ -n "$libs" ]] || fail "ldd lists no library for $binary (a static binary needs no libraries: adapt this script)"
for lib in $libs; do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done
install -D -m 0644 "$CA_BUNDLE" "$root$CA_BUNDLE"
mkdir -p "$root/etc" "$root/tmp" "$root/home/nonroot"
chmod 1777 "$root/tmp"
chown "$uid:$gid" "$root/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$uid" "$gid" > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$gid" > "$root/etc/group"
buildah umount "$ctr" >/dev/null

buildah config \
    --user "$user" \
    --port "$port" \
    --entrypoint "$entrypoint" \
    --cmd "$cmd" \
    --workingdir / \
    --env PATH=/usr/local/bin \
    --env SSL_CERT_FILE="$CA_BUNDLE" \
    --label org.opencontainers.image.title=replicanary \
    --label org.opencontainers.image.version="$version" \
    "$ctr"
previous="$(buildah images --quiet --no-trunc "$image" 2>/dev/null || true)"
buildah commit --quiet --format oci --rm "$ctr" "$image" >/dev/null
trap - EXIT
# The image this tag named before (a rebuild) is left untagged: remove it, unless in use.
current="$(buildah images --quiet --no-trunc "$image")"
if [[ -n "$previous" && "$previous" != "$current" ]]; then
    buildah rmi "$previous" >/dev/null 2>&1 || true
fi

# --- the built image agrees with the Dockerfile --------------------------------------------
got="$(buildah inspect --type image "$image" | python3 -c '
import json, sys
c = json.load(sys.stdin)["OCIv1"]["config"]
print("|".join([c.get("User", ""), ",".join(sorted(p.removesuffix("/tcp") for p in c.get("ExposedPorts", {}))),
                json.dumps(c.get("Entrypoint"), separators=(",", ":")),
                json.dumps(c.get("Cmd"), separators=(",", ":"))]))')"
want="$user|$port|$(tr -d ' ' <<<"$entrypoint")|$(tr -d ' ' <<<"$cmd")"
[[ "$got" == "$want" ]] || fail "the image says $got, $DOCKERFILE says $want"

echo "built $image (user $user, port $port, entrypoint $entrypoint; libraries: $(tr '\n' ' ' <<<"$libs"))"
if [[ -n "$archive" ]]; then
    rm -f "$archive"
    buildah push --quiet "$image" "oci-archive:$archive:$image"
    echo "wrote $archive ($(du -h "$archive" | cut -f1), $(stat -c %s "$archive") bytes)"
fi
