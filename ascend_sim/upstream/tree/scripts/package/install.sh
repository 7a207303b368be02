#!/bin/bash
# ----------------------------------------------------------------------------------------------------
# SIMULATOR (ascend-fa): installer of the simulated custom operator package (runs inside the .run).
# Behaves like CANN's custom-op template install.sh that ops-transformer packs:
#   --quiet | --install-path=<abs path> | --install-for-all | --force ; any other --* is ignored.
# Target: --install-path=<p> (writes <p>/vendors/<vendor>/bin/set_env.bash), else $ASCEND_CUSTOM_OPP_PATH
# (a single path), else $ASCEND_OPP_PATH; without --install-path the vendor is put first in
# <target>/vendors/config.ini (load_priority=<vendor>,<others>). Prints SUCCESS at the end.
# build.sh replaces the vendor name below with <vendor_name>_transformer.
# ----------------------------------------------------------------------------------------------------
vendor_name=customize
opmaster_so_name=libcust_opmaster_rt2.0.so
opsproto_so_name=libcust_opsproto_rt2.0.so
opapi_so_name=libcust_opapi.so

sourcedir="$PWD/packages"
vendordir="vendors/${vendor_name}"

QUIET="y"
INSTALL_FOR_ALL="n"
FORCE_INSTALL="n"
INSTALL_PATH=""

while [ $# -gt 0 ]; do
    case "$1" in
    --quiet)
        QUIET="y"
        ;;
    --install-path=*)
        INSTALL_PATH="${1#*=}"
        INSTALL_PATH="${INSTALL_PATH%/}"
        ;;
    --install-for-all)
        INSTALL_FOR_ALL="y"
        ;;
    --force)
        FORCE_INSTALL="y"
        ;;
    --*)
        ;;
    *)
        break
        ;;
    esac
    shift
done

log() {
    echo "[ops_custom] [$(date +"%Y-%m-%d %H:%M:%S")] $*"
}

DIR_MODE=750
FILE_MODE=640
if [ "${INSTALL_FOR_ALL}" = "y" ]; then
    DIR_MODE=755
    FILE_MODE=644
fi

if [ -n "${INSTALL_PATH}" ]; then
    if [[ ! "${INSTALL_PATH}" = /* ]]; then
        log "[ERROR] use absolute path for --install-path argument"
        exit 1
    fi
    if [ ! -d "${INSTALL_PATH}" ]; then
        if ! mkdir -p "${INSTALL_PATH}" >/dev/null 2>&1; then
            log "[ERROR] create ${INSTALL_PATH} failed"
            exit 1
        fi
        chmod "${DIR_MODE}" "${INSTALL_PATH}"
    fi
    targetdir="${INSTALL_PATH}"
elif [ -n "${ASCEND_CUSTOM_OPP_PATH}" ]; then
    if [[ "${ASCEND_CUSTOM_OPP_PATH}" == *:* ]]; then
        log "[ERROR] environment variable ASCEND_CUSTOM_OPP_PATH=${ASCEND_CUSTOM_OPP_PATH} is set and has multiple" \
            "paths in it (colon inside), which will cause the custom op installed incorrectly." \
            "Please use the --install-path option to specify an installation path instead."
        exit 1
    fi
    mkdir -p "${ASCEND_CUSTOM_OPP_PATH}" >/dev/null 2>&1
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
if [ ! -w "${targetdir}" ]; then
    log "[WARNING] The directory ${targetdir} does not have sufficient permissions. Please check and modify" \
        "the folder permissions, or use the --install-path option to specify an installation path."
fi

map_arch() {
    case "$1" in
        x86_64|X86_64|amd64|AMD64|"Advanced Micro Devices X86-64") echo x86_64 ;;
        aarch64|AArch64|arm64|ARM64) echo aarch64 ;;
        *) return 1 ;;
    esac
}

# ELF e_machine of a shared library, without binutils: 62 = x86_64, 183 = aarch64
elf_arch() {
    local machine
    machine=$(od -An -t u2 -j 18 -N 2 "$1" 2>/dev/null | tr -d ' ')
    case "${machine}" in
        62) echo x86_64 ;;
        183) echo aarch64 ;;
        *) echo "unknown(${machine})" ;;
    esac
}

so_list() {
    local f
    for f in "${sourcedir}/${vendordir}"/op_impl/ai_core/tbe/op_tiling/lib/linux/*/"${opmaster_so_name}" \
             "${sourcedir}/${vendordir}"/op_proto/lib/linux/*/"${opsproto_so_name}" \
             "${sourcedir}/${vendordir}/op_api/lib/${opapi_so_name}"; do
        [ -f "${f}" ] && echo "${f}"
    done
}

validate_shared_libraries() {
    local so name err env_arch so_arch
    if [ "${FORCE_INSTALL}" = "y" ]; then
        log "[WARNING] --force is enabled, skip shared library validation."
        return 0
    fi
    if ! so_list | grep -q "/${opmaster_so_name}\$"; then
        log "[ERROR] Required shared library '${opmaster_so_name}' was not found in package path."
        return 1
    fi
    env_arch=$(map_arch "$(uname -m)") || { log "[ERROR] Unsupported architecture '$(uname -m)'."; return 1; }
    while IFS= read -r so; do
        name="${so##*/}"
        so_arch=$(elf_arch "${so}")
        if [ "${so_arch}" != "${env_arch}" ]; then
            log "[ERROR] The architecture of the shared library '${name}' (${so_arch}) is incompatible with" \
                "the current running environment (${env_arch})."
            return 1
        fi
        if [ -n "${ASCEND_HOME_PATH}" ] && command -v python3 >/dev/null 2>&1; then
            err=$(LD_LIBRARY_PATH="$(dirname "${so}"):${sourcedir}/${vendordir}/op_api/lib:${LD_LIBRARY_PATH}" \
                  python3 -c 'import ctypes, os, sys
try:
    ctypes.CDLL(sys.argv[1], mode=os.RTLD_NOW)
except OSError as exc:
    print(exc)
    sys.exit(1)' "${so}" 2>&1)
            if [ $? -ne 0 ]; then
                log "[ERROR] Failed to load ${name} with env ASCEND_HOME_PATH(${ASCEND_HOME_PATH}), error message is ${err//${so}/${name}}."
                return 1
            fi
        fi
    done < <(so_list)
    return 0
}

create_dir() {
    if [ ! -d "$1" ]; then
        mkdir -p "$1" || { log "[ERROR] create dir $1 failed."; return 1; }
    fi
    chmod "${DIR_MODE}" "$1"
}

set_modes() {
    find "$1" -type d -exec chmod "${DIR_MODE}" {} + 2>/dev/null
    find "$1" -type f -name '*.so' -exec chmod "${DIR_MODE}" {} + 2>/dev/null
    find "$1" -type f ! -name '*.so' -exec chmod "${FILE_MODE}" {} + 2>/dev/null
}

upgrade() {
    local sub="$1"
    if [ ! -d "${sourcedir}/${vendordir}/${sub}" ]; then
        log "[INFO] no need to upgrade ops ${sub} files"
        return 0
    fi
    if [ -d "${targetdir}/${vendordir}/${sub}" ]; then
        log "[INFO] replace old ops ${sub} files ......"
        chmod -R u+w "${targetdir}/${vendordir}/${sub}" >/dev/null 2>&1
        rm -rf "${targetdir:?}/${vendordir}/${sub}"
    fi
    create_dir "${targetdir}/${vendordir}/${sub}" || return 1
    log "[INFO] copy new ops ${sub} files ......"
    if ! cp -rf "${sourcedir}/${vendordir}/${sub}/." "${targetdir}/${vendordir}/${sub}/"; then
        log "[ERROR] copy new ${sub} files failed"
        return 1
    fi
    set_modes "${targetdir}/${vendordir}/${sub}"
    return 0
}

create_dir "${targetdir}/vendors" || exit 1
create_dir "${targetdir}/${vendordir}" || exit 1

log "[INFO] validate shared libraries before installation"
if ! validate_shared_libraries; then
    log "[ERROR] Shared library validation failed. To skip this validation and continue installation," \
        "run this package again with --force."
    exit 1
fi

for sub in op_proto op_impl op_api; do
    log "[INFO] upgrade ${sub}"
    upgrade "${sub}" || exit 1
done

log "[INFO] upgrade version.info"
if ! cp -f "${sourcedir}/${vendordir}/version.info" "${targetdir}/${vendordir}/version.info"; then
    log "[ERROR] copy new version.info file failed"
    exit 1
fi
chmod "${FILE_MODE}" "${targetdir}/${vendordir}/version.info"

_ASCEND_CUSTOM_OPP_PATH="${targetdir}/${vendordir}"
if [ -n "${INSTALL_PATH}" ]; then
    bin_path="${_ASCEND_CUSTOM_OPP_PATH}/bin"
    create_dir "${bin_path}" || exit 1
    if ! printf '#!/bin/bash\nexport ASCEND_CUSTOM_OPP_PATH=%s:${ASCEND_CUSTOM_OPP_PATH}\nexport LD_LIBRARY_PATH=%s/op_api/lib/:${LD_LIBRARY_PATH}\n' \
            "${_ASCEND_CUSTOM_OPP_PATH}" "${_ASCEND_CUSTOM_OPP_PATH}" > "${bin_path}/set_env.bash"; then
        log "[ERROR] write ASCEND_CUSTOM_OPP_PATH to set_env.bash failed"
        exit 1
    fi
    chmod "${DIR_MODE}" "${bin_path}/set_env.bash"
    log "[INFO] using requirements: when custom module install finished or before you run the custom module," \
        "execute the command [ source ${bin_path}/set_env.bash ] to set the environment path"
else
    config_file="${targetdir}/vendors/config.ini"
    others=""
    if [ -f "${config_file}" ]; then
        found=$(grep -m1 '^load_priority=' "${config_file}" | cut -d'=' -f2-)
        others=$(echo "${found}" | tr ',' '\n' | sed 's/^ *//;s/ *$//' | grep -v -x -e "${vendor_name}" -e '' \
                 | paste -sd, -)
    fi
    line="load_priority=${vendor_name}${others:+,${others}}"
    if [ -f "${config_file}" ] && grep -q '^load_priority=' "${config_file}"; then
        sed -i "s|^load_priority=.*|${line}|" "${config_file}"
    else
        echo "${line}" >> "${config_file}"
    fi
    if [ $? -ne 0 ]; then
        log "[ERROR] echo load_priority failed"
        exit 1
    fi
    chmod 640 "${config_file}"
    [ "${INSTALL_FOR_ALL}" = "y" ] && chmod 644 "${config_file}"
    log "[INFO] using requirements: when custom module install finished or before you run the custom module," \
        "execute the command [ export LD_LIBRARY_PATH=${_ASCEND_CUSTOM_OPP_PATH}/op_api/lib/:\${LD_LIBRARY_PATH} ]" \
        "to set the environment path"
fi

echo "SUCCESS"
exit 0
