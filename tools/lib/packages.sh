# Sourced by tools/test and tools/quickstart: installs the Debian packages Hone builds against when missing.
HONE_PACKAGES=(libopenblas-dev liblz4-dev libomp-dev zlib1g-dev)
# Only the tests need these: Open MPI for the data-parallel tests (hone itself loads MPI only under mpirun).
HONE_TEST_PACKAGES=(openmpi-bin libopenmpi-dev)

# ensure_packages [EXTRA_PACKAGE ...]: HONE_PACKAGES plus the extras.
ensure_packages() {
    local missing=()
    for package in "${HONE_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing ${missing[*]} ..." >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq "${missing[@]}" >&2
}
