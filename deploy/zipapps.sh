#!/usr/bin/env bash
# Build single-file plugins for a node's pre-installed plugin directory (/opt/nri/plugins):
# one shiv zipapp per plugin, holding the plugin, nri and their dependencies, native
# extensions (protobuf's) included, run by the node's python3 (>= 3.11) with no venv.
#
#   deploy/zipapps.sh OUTDIR [PLUGIN...]      (default: every plugin under plugins/)
#
# Writes OUTDIR/nri-<plugin>.pyz; install one as /opt/nri/plugins/NN-<plugin> (mode 0755).
# On its first start a zipapp unpacks its site-packages once, under NRI_ZIPAPP_ROOT given
# here (default /var/cache/nri/zipapps; HOME is not used, a runtime may start plugins with
# none); SHIV_ROOT overrides it when the plugin runs. Environment:
#   NRI_WHEELHOUSE   wheels to build from with no index (default: pip wheel of the checkout)
#   NRI_ZIPAPP_ROOT  where the zipapps unpack at run time
#   SHIV             the shiv command (default: shiv)
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [PLUGIN...]" >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
if [ $# -gt 0 ]; then plugins=("$@"); else
    plugins=(); for p in "$top"/plugins/*/pyproject.toml; do plugins+=("$(basename "$(dirname "$p")")"); done
fi
root=${NRI_ZIPAPP_ROOT:-/var/cache/nri/zipapps}
shiv=${SHIV:-shiv}

wheels=${NRI_WHEELHOUSE:-}
if [ -z "$wheels" ]; then
    wheels=$out/wheels
    dirs=("$top/stub"); for p in "${plugins[@]}"; do dirs+=("$top/plugins/$p"); done
    NRI_BUILD_RELEASE=1 python3 -m pip wheel --quiet --wheel-dir "$wheels" "${dirs[@]}"
fi

for p in "${plugins[@]}"; do
    [ -f "$top/plugins/$p/pyproject.toml" ] || { echo "$0: no plugin '$p' in $top/plugins" >&2; exit 2; }
    "$shiv" --quiet --reproducible --compile-pyc --root "$root" --python "/usr/bin/env python3" \
        --console-script "nri-$p" --output-file "$out/nri-$p.pyz" \
        --no-index --find-links "$wheels" "nri-$p" >/dev/null
    echo "$out/nri-$p.pyz"
done
