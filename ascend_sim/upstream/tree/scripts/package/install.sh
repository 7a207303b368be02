#!/bin/bash
# ----------------------------------------------------------------------------------------------------
# SIMULATOR (ascend-fa): installer of the simulated custom operator package (runs inside the .run).
# Behaves as ops-transformer v9.0.1 `cmake/scripts/custom/install.sh` (read at tag v9.0.1 of
# mirror-cann/ops-transformer); the messages are the real ones. Written for the simulator, with quoting:
#   - options: --quiet, --install-path=<abs path>, --install-for-all; any other --* is skipped. There is
#     no --force and no shared-library (ELF / dlopen) validation in the real script.
#   - QUIET starts as "y": an existing ops dir is always replaced, never asked about.
#   - target: --install-path (created with a plain mkdir, no -p), else $ASCEND_CUSTOM_OPP_PATH (a value
#     with ':' is refused), else $ASCEND_OPP_PATH.
#   - --install-path writes <target>/vendors/<vendor>/bin/set_env.bash; otherwise <target>/vendors/config.ini:
#     a new file is created with mode 640 and "load_priority=<vendor>"; in an existing one the vendor is put
#     first on the load_priority line; an existing file without that line is left as it is (the real script
#     only rewrites a line it found). --install-for-all: `chmod 755 config.ini`.
#   - the vendor tree gets no chmod: cp/mkdir give it the archive's modes masked by the installer's umask.
# build.sh replaces the vendor name below with <vendor_name>_transformer (as cmake/custom_build.cmake does).
# ----------------------------------------------------------------------------------------------------
vendor_name=customize
targetdir=/usr/local/Ascend/opp

sourcedir="$PWD/packages"
vendordir="vendors/${vendor_name}"

QUIET="y"
INSTALL_FOR_ALL="n"
INSTALL_PATH=""

while true; do
    case "$1" in
    --quiet)
        QUIET="y"
        shift
        ;;
    --install-path=*)
        INSTALL_PATH="${1#*=}"
        INSTALL_PATH="${INSTALL_PATH%/}"
        shift
        ;;
    --install-for-all)
        INSTALL_FOR_ALL="y"
        shift
        ;;
    --*)
        shift
        ;;
    *)
        break
        ;;
    esac
done

log() {
    echo "[ops_custom] [$(date +"%Y-%m-%d %H:%M:%S")] $1"
}

if [ -n "${INSTALL_PATH}" ]; then
    if [[ ! "${INSTALL_PATH}" = /* ]]; then
        log "[ERROR] use absolute path for --install-path argument"
        exit 1
    fi
    if [ ! -d "${INSTALL_PATH}" ]; then
        # real: `mkdir ${INSTALL_PATH}` without -p: a missing parent fails
        if ! mkdir "${INSTALL_PATH}" >/dev/null 2>&1; then
            log "[ERROR] create ${INSTALL_PATH} failed"
            exit 1
        fi
    fi
    targetdir="${INSTALL_PATH}"
elif [ -n "${ASCEND_CUSTOM_OPP_PATH}" ]; then
    if [[ "${ASCEND_CUSTOM_OPP_PATH}" == *:* ]]; then
        log "[ERROR] environment variable ASCEND_CUSTOM_OPP_PATH=${ASCEND_CUSTOM_OPP_PATH} is set and has multiple path in it (colon inside), which will cause the custom op installed incorrectly. Please use the --install-path option to specify an installation path instead."
        exit 1
    fi
    if [ ! -d "${ASCEND_CUSTOM_OPP_PATH}" ]; then
        # real: logs the failure and goes on (the "no exist" check below stops it)
        if ! mkdir -p "${ASCEND_CUSTOM_OPP_PATH}" >/dev/null 2>&1; then
            log "[ERROR] create ${ASCEND_CUSTOM_OPP_PATH} failed"
        fi
    fi
    targetdir="${ASCEND_CUSTOM_OPP_PATH}"
else
    if [ -z "${ASCEND_OPP_PATH}" ]; then
        log "[ERROR] env ASCEND_OPP_PATH no exist"
        exit 1
    fi
    targetdir="${ASCEND_OPP_PATH}"
fi

if [ ! -d "${targetdir}" ]; then
    log "[ERROR] ${targetdir} no exist"
    exit 1
fi

if [ ! -x "${targetdir}" ] || [ ! -w "${targetdir}" ] || [ ! -r "${targetdir}" ]; then
    log "[WARNING] The directory ${targetdir} does not have sufficient permissions. Please check and modify the folder permissions (e.g., using chmod), or use the --install-path option to specify an installation path and change the environment variable ASCEND_CUSTOM_OPP_PATH to the specified path."
fi

# true when the target dir already holds an entry named like one of the package's (the real script then
# empties the dir: QUIET is always "y", so the overlay/replace prompt never shows)
has_same_file() {
    local src="$1" dst="$2" entry
    for entry in "${src}"/*; do
        [ -e "${dst}/${entry##*/}" ] && return 0
    done
    return 1
}

upgrade() {
    local sub="$1"
    if [ ! -d "${sourcedir}/${vendordir}/${sub}" ]; then
        log "[INFO] no need to upgrade ops ${sub} files"
        return 0
    fi
    if [ ! -d "${targetdir}/${vendordir}/${sub}" ]; then
        log "[INFO] create ${targetdir}/${vendordir}/${sub}."
        if ! mkdir -p "${targetdir}/${vendordir}/${sub}"; then
            log "[ERROR] create ${targetdir}/${vendordir}/${sub} failed"
            return 1
        fi
    else
        if has_same_file "${sourcedir}/${vendordir}/${sub}" "${targetdir}/${vendordir}/${sub}"; then
            rm -rf "${targetdir:?}/${vendordir}/${sub:?}"/*
        fi
        log "[INFO] replace or merge old ops ${sub} files ......"
    fi
    log "[INFO] copy new ops ${sub} files ......"
    chmod -R +w "${targetdir}/${vendordir}/${sub}/" >/dev/null 2>&1
    if ! cp -rf "${sourcedir}/${vendordir}/${sub}"/* "${targetdir}/${vendordir}/${sub}/"; then
        log "[ERROR] copy new ${sub} files failed"
        return 1
    fi
    return 0
}

upgrade_file() {
    if [ ! -e "${sourcedir}/${vendordir}/$1" ]; then
        log "[INFO] no need to upgrade ops $1 file"
        return 0
    fi
    log "[INFO] copy new $1 files ......"
    if ! cp -f "${sourcedir}/${vendordir}/$1" "${targetdir}/${vendordir}/$1"; then
        log "[ERROR] copy new $1 file failed"
        return 1
    fi
    return 0
}

# config.ini: vendor first on the load_priority line (real: grep -w load_priority, drop the vendor word,
# re-join the others with ',', rewrite the line only when other vendors remain)
put_vendor_first() {
    local config_file="$1" found others=() item line out="" done_line=n
    found=$(grep -m1 '^load_priority=' "${config_file}" | cut -d'=' -f2-)
    IFS=', ' read -ra items <<< "${found}"
    for item in "${items[@]}"; do
        [ -n "${item}" ] && [ "${item}" != "${vendor_name}" ] && others+=("${item}")
    done
    [ "${#others[@]}" -eq 0 ] && return 0
    while IFS= read -r line || [ -n "${line}" ]; do
        if [ "${done_line}" = n ] && [[ "${line}" == load_priority=* ]]; then
            line="load_priority=${vendor_name},$(IFS=','; echo "${others[*]}")"
            done_line=y
        fi
        out+="${line}"$'\n'
    done < "${config_file}"
    printf '%s' "${out}" > "${config_file}"
}

if [ ! -d "${targetdir}/vendors" ]; then
    log "[INFO] create ${targetdir}/vendors."
    if ! mkdir -p "${targetdir}/vendors"; then
        log "[ERROR] create ${targetdir}/vendors failed"
        exit 1
    fi
fi
chmod u+w "${targetdir}/vendors"

for sub in framework op_proto op_impl op_api; do
    case "${sub}" in
        framework) log "[INFO] upgrade framework" ;;
        op_proto) log "[INFO] upgrade op proto" ;;
        op_impl) log "[INFO] upgrade op impl" ;;
        op_api) log "[INFO] upgrade op api" ;;
    esac
    upgrade "${sub}" || exit 1
done

log "[INFO] upgrade version.info"
upgrade_file version.info || exit 1

_ASCEND_CUSTOM_OPP_PATH="${targetdir}/${vendordir}"
if [ -n "${INSTALL_PATH}" ] && [ -d "${INSTALL_PATH}" ]; then
    bin_path="${_ASCEND_CUSTOM_OPP_PATH}/bin"
    if [ ! -d "${bin_path}" ]; then
        if ! mkdir -p "${bin_path}" >/dev/null 2>&1; then
            log "[ERROR] create ${bin_path} failed"
            exit 1
        fi
    fi
    if ! printf '#!/bin/bash\nexport ASCEND_CUSTOM_OPP_PATH=%s:${ASCEND_CUSTOM_OPP_PATH}\nexport LD_LIBRARY_PATH=%s/op_api/lib/:${LD_LIBRARY_PATH}\n' \
            "${_ASCEND_CUSTOM_OPP_PATH}" "${_ASCEND_CUSTOM_OPP_PATH}" > "${bin_path}/set_env.bash"; then
        log "[ERROR] write ASCEND_CUSTOM_OPP_PATH to set_env.bash failed"
        exit 1
    fi
    log "[INFO] using requirements: when custom module install finished or before you run the custom module, execute the command [ source ${bin_path}/set_env.bash ] to set the environment path"
else
    config_file="${targetdir}/vendors/config.ini"
    if [ ! -f "${config_file}" ]; then
        touch "${config_file}"
        chmod 640 "${config_file}"
        if ! echo "load_priority=${vendor_name}" > "${config_file}"; then
            log "[ERROR] echo load_priority failed"
            exit 1
        fi
    else
        put_vendor_first "${config_file}"
    fi
    if [ "${INSTALL_FOR_ALL}" = "y" ]; then
        chmod 755 "${config_file}"
    fi
    log "[INFO] using requirements: when custom module install finished or before you run the custom module, execute the command [ export LD_LIBRARY_PATH=${_ASCEND_CUSTOM_OPP_PATH}/op_api/lib/:\${LD_LIBRARY_PATH} ] to set the environment path"
fi

if [ -d "${targetdir}/${vendordir}/op_impl/cpu/aicpu_kernel/impl/" ]; then
    chmod -R 440 "${targetdir}/${vendordir}/op_impl/cpu/aicpu_kernel/impl/"* >/dev/null 2>&1
fi

echo "SUCCESS"
exit 0
