#!/usr/bin/env bash
# Build plugin images with no container registry: a base image made locally from Debian
# packages (mmdebstrap), then deploy/Containerfile on it with buildah, written as OCI archives.
#
#   deploy/images.sh OUTDIR [PLUGIN...]      (default: every plugin under plugins/)
#
# Needs root, buildah and mmdebstrap (apt-get install buildah mmdebstrap). Writes
# OUTDIR/nri-plugin-<plugin>.oci.tar, loadable with `ctr -n k8s.io images import`,
# `podman load` and `docker load` (Docker 25 or newer), and OUTDIR/sizes.tsv. Environment:
#   NRI_BASE_IMAGE   use this image instead of making the Debian one (e.g. a slim Python image)
#   NRI_SUITE        Debian suite of the base (default: bookworm)
#   NRI_MIRROR       Debian mirror (default: the first one apt is configured with)
#   NRI_CA_BUNDLE    CA bundle pip needs to reach the index (default: the system's, if any)
#   NRI_STORAGE      buildah's storage directory (default: OUTDIR/storage; vfs driver)
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [PLUGIN...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
if [ $# -gt 0 ]; then plugins=("$@"); else
    plugins=(); for p in "$top"/plugins/*/pyproject.toml; do plugins+=("$(basename "$(dirname "$p")")"); done
fi
for p in "${plugins[@]}"; do
    [ -f "$top/plugins/$p/pyproject.toml" ] || { echo "$0: no plugin '$p' in $top/plugins" >&2; exit 2; }
done

storage=${NRI_STORAGE:-$out/storage}
bh() { buildah --root "$storage/root" --runroot "$storage/run" --storage-driver vfs "$@"; }
suite=${NRI_SUITE:-bookworm}
ca=${NRI_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
secret=(); [ -s "$ca" ] && secret=(--secret "id=ca-certificates,src=$ca")

mirror=${NRI_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

base=${NRI_BASE_IMAGE:-}
if [ -z "$base" ]; then
    base=localhost/nri-python-base:$suite
    if ! bh inspect --type image "$base" >/dev/null 2>&1; then
        start=$SECONDS
        # essential packages plus python3 and its venv module; no apt, no docs, merged /usr
        # without the usrmerge package (which would pull in perl)
        mmdebstrap --quiet --variant=essential --include=python3,python3-venv \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --customize-hook='rm -rf "$1"/var/cache/* "$1"/var/log/* "$1"/var/lib/apt/lists/*' \
            "$suite" "$out/base.tar" "deb $mirror $suite main"
        container=$(bh from scratch)
        bh add "$container" "$out/base.tar" /
        bh config --cmd /usr/bin/python3 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
        bh commit --quiet --rm "$container" "$base" >/dev/null
        rm -f "$out/base.tar"
        echo "base image $base: $((SECONDS - start)) s"
    fi
fi

source_url=$(git -C "$top" remote get-url origin 2>/dev/null || true)
printf 'image\tseconds\tsize\n' > "$out/sizes.tsv"
for p in "${plugins[@]}"; do
    start=$SECONDS
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$top/plugins/$p/pyproject.toml" | head -n1)
    image=localhost/nri-plugin-$p:${version:-latest}
    bh build --quiet --isolation chroot --layers \
        --file "$top/deploy/Containerfile" --ignorefile "$top/deploy/Containerfile.dockerignore" \
        --build-arg "BASE=$base" --build-arg "PLUGIN=$p" \
        --build-arg "VERSION=${version:-unknown}" --build-arg "SOURCE=$source_url" \
        "${secret[@]}" --tag "$image" "$top" >/dev/null
    rm -f "$out/nri-plugin-$p.oci.tar"
    bh push --quiet "$image" "oci-archive:$out/nri-plugin-$p.oci.tar:$image"
    size=$(bh images --noheading --format '{{.Size}}' "$image")
    seconds=$((SECONDS - start))
    printf '%s\t%s\t%s\n' "$image" "$seconds" "$size" >> "$out/sizes.tsv"
    echo "$image: $seconds s, $out/nri-plugin-$p.oci.tar"
done
