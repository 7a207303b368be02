#!/bin/bash
# ----------------------------------------------------------------------------------------------------
# SIMULATOR (ascend-fa): build script of the SIMULATED ops-transformer repository.
#
# Stands in for the root build.sh of gitcode.com/cann/ops-transformer in tests, the demo and
# benchmarks. It implements the subset of the real command line used to build a custom operator
# package, with the real rules: options only in the `--opt=value` form, --soc lower-cased and compared
# for exact equality with the supported list, unknown arguments print the help and exit 1, the CANN
# environment must be sourced (ASCEND_HOME_PATH, `bisheng` on PATH). The build really compiles C
# sources (with the simulated bisheng, a gcc wrapper) and packs a self-extracting
# build_out/cann-ops-transformer-<vendor>_linux-<arch>.run.
# Prerequisites as the real v9.0.1 build (facts 9.4): CMake >= 3.16 (CMakeLists.txt
# cmake_minimum_required(VERSION 3.16)), the Python modules of requirements.txt, and the third-party
# sources of cmake/third_party/*.cmake, fetched from the internet unless --cann_3rd_lib_path=<dir> holds
# them (scripts/util/fetch_third_party.py: the lookup paths, the network of the build host, CMake's texts).
# Kernel binaries per SoC as cmake/func.cmake lays them out: op_impl/ai_core/tbe/kernel/<soc>/<op>/ and
# op_impl/ai_core/tbe/kernel/config/<soc>/<op>.json (scripts/util/gen_kernel_config.py).
# ----------------------------------------------------------------------------------------------------

BASEPATH=$(cd "$(dirname "$0")" && pwd)
BUILD_PATH="${BASEPATH}/build"
BUILD_OUT_PATH="${BASEPATH}/build_out"

SUPPORT_COMPUTE_UNIT_SHORT=("ascend910b" "ascend910_93" "ascend950" "ascend310p" "kirinx90" "kirin9030" "mc62cm12a")

ENABLE_PACKAGE=FALSE
ENABLE_JIT=FALSE
ENABLE_EXPERIMENTAL=FALSE
ENABLE_DEBUG=FALSE
VERBOSE=""
MAKE_CLEAN=FALSE
ASCEND_SOC_UNITS="ascend910b"
VENDOR_NAME=""
ASCEND_OP_NAME=""
INPUT_JOB_NUM=""
OPT_LEVEL="2"
CANN_3RD_LIB_PATH="${BASEPATH}/third_party"   # real default: ./third_party (build.sh, variables.cmake)

log() {
    echo "[$(date '+%Y-%m-%d %H:%M:%S')] $*"
}

help_info() {
    local supported
    supported=$(IFS='|'; echo "${SUPPORT_COMPUTE_UNIT_SHORT[*]}")
    cat <<HELP
build.sh (simulated ops-transformer, ascend-fa simulator)
Usage: bash build.sh [options]
Options:
    -h, --help              Print usage
    --pkg                   Build the custom operator run package with kernel binaries
    --jit                   Build the custom operator run package without kernel binaries
    --soc=soc_version       Target SoC, one of ${supported}
                            (default ascend910b); lower-cased, then compared exactly
    --ops=op1,op2           Operators to build (directory names under attention/)
    --vendor_name=name      Name of the custom package (default custom); installs vendors/<name>_transformer
    -j<n>                   Number of build jobs (default and maximum: 2 x CPU count)
    -O<n>                   Optimisation level, O0..O3 (default O2)
    --experimental          Also look for operators under experimental/
    --debug                 Build with -O0 -g
    --cann_3rd_lib_path=<PATH>
                            Set ascend third_party package install path, default ./third_party
    -v                      Verbose compiler command lines
    --make_clean            Remove build/ and build_out/
Examples:
    bash build.sh --pkg --soc=ascend910b --ops=flash_attention_score
    bash build.sh --pkg --soc=ascend910b --vendor_name=customize -j16 -O3
    bash build.sh --pkg --experimental --soc=ascend910b
HELP
}

for arg in "$@"; do
    case "${arg}" in
    -h|--help)
        help_info
        exit 0
        ;;
    --pkg)
        ENABLE_PACKAGE=TRUE
        ;;
    --jit)
        ENABLE_PACKAGE=TRUE
        ENABLE_JIT=TRUE
        ;;
    --soc=*)
        ASCEND_SOC_UNITS="${arg#*=}"
        ;;
    --ops=*)
        ASCEND_OP_NAME="${arg#*=}"
        ;;
    --vendor_name=*)
        VENDOR_NAME="${arg#*=}"
        ;;
    -j*)
        INPUT_JOB_NUM="${arg#-j}"
        if ! [[ "${INPUT_JOB_NUM}" =~ ^[1-9][0-9]*$ ]]; then
            help_info
            exit 1
        fi
        ;;
    -O*)
        OPT_LEVEL="${arg#-O}"
        if ! [[ "${OPT_LEVEL}" =~ ^[0-3]$ ]]; then
            help_info
            exit 1
        fi
        ;;
    --experimental)
        ENABLE_EXPERIMENTAL=TRUE
        ;;
    --debug)
        ENABLE_DEBUG=TRUE
        ;;
    -v)
        VERBOSE=1
        ;;
    --make_clean)
        MAKE_CLEAN=TRUE
        ;;
    --cann_3rd_lib_path=*)
        # real: CANN_3RD_LIB_PATH="$(realpath ${OPTARG#*=})" under `set -e`: a missing dir stops the build
        if ! CANN_3RD_LIB_PATH="$(realpath -- "${arg#*=}")"; then
            exit 1
        fi
        ;;
    *)
        help_info
        exit 1
        ;;
    esac
done

clean() {
    rm -rf "${BUILD_PATH}" "${BUILD_OUT_PATH}"
}

if [ "${MAKE_CLEAN}" = "TRUE" ]; then
    clean
    log "Info: build/ and build_out/ removed"
    exit 0
fi

if [ "${ENABLE_PACKAGE}" != "TRUE" ]; then
    echo "[ERROR] the simulated ops-transformer only builds run packages: pass --pkg or --jit"
    help_info
    exit 1
fi

# --soc: lower-case, then exact equality (one SoC per package build)
set_compute_unit_option() {
    local lowercase_word support_unit
    lowercase_word=$(echo "${ASCEND_SOC_UNITS}" | tr '[:upper:]' '[:lower:]')
    for support_unit in "${SUPPORT_COMPUTE_UNIT_SHORT[@]}"; do
        if [[ "${lowercase_word}" == "${support_unit}" ]]; then
            ASCEND_SOC_UNITS="${support_unit}"
            return 0
        fi
    done
    echo "[ERROR] The input soc ${ASCEND_SOC_UNITS} is not supported."
    exit 1
}
set_compute_unit_option

if [ -z "${VENDOR_NAME}" ] && [ -z "${ASCEND_OP_NAME}" ]; then
    echo "[ERROR] neither --vendor_name nor --ops given: that builds the built-in ops-transformer package," \
         "which the simulator does not provide. Pass --vendor_name=<name> and/or --ops=<op list>."
    exit 1
fi
VENDOR_NAME="${VENDOR_NAME:-custom}"
if ! [[ "${VENDOR_NAME}" =~ ^[A-Za-z0-9_-]+$ ]]; then
    echo "[ERROR] invalid --vendor_name ${VENDOR_NAME}: use letters, digits, '_' and '-'"
    exit 1
fi

# CANN environment: the real build sources <cann>/set_env.sh and needs bisheng
set_env() {
    if [ -z "${ASCEND_HOME_PATH}" ]; then
        echo "[ERROR] env ASCEND_HOME_PATH is not set, please source the CANN set_env.sh first," \
             "e.g. source /usr/local/Ascend/cann/set_env.sh"
        exit 1
    fi
    if [ ! -d "${ASCEND_HOME_PATH}" ]; then
        echo "[ERROR] ASCEND_HOME_PATH=${ASCEND_HOME_PATH} does not exist"
        exit 1
    fi
    if ! command -v bisheng >/dev/null 2>&1; then
        echo "bisheng compilation tool not found"
        exit 1
    fi
    if ! command -v make >/dev/null 2>&1; then
        echo "[ERROR] make not found"
        exit 1
    fi
}
set_env

# CMake >= 3.16: the real build runs `cmake ..` (under set -e: no cmake = bash's "command not found", rc 127);
# an older one stops at CMakeLists.txt:11 cmake_minimum_required(VERSION 3.16) with CMake's text.
check_cmake() {
    local out version
    out=$(cmake --version) || exit $?
    version=$(sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p' <<< "${out}" | head -n 1)
    if [ -z "${version}" ] || [ "$(printf '%s\n' 3.16 "${version}" | sort -V | head -n 1)" != "3.16" ]; then
        echo "CMake Error at CMakeLists.txt:11 (cmake_minimum_required):"
        echo "  CMake 3.16 or higher is required.  You are running version ${version:-unknown}"
        echo
        echo
        echo "-- Configuring incomplete, errors occurred!"
        exit 1
    fi
    log "Info: cmake ${version}"
}
check_cmake

# operators: directory names under attention/ (and experimental/attention/ with --experimental)
OP_DIRS=()
resolve_ops() {
    local op dir found supported
    local op_list
    if [ -n "${ASCEND_OP_NAME}" ]; then
        IFS=',' read -ra op_list <<< "${ASCEND_OP_NAME}"
    else
        op_list=()
        for dir in "${BASEPATH}"/attention/*/; do
            dir="${dir%/}"
            [ -d "${dir}/op_host" ] && op_list+=("${dir##*/}")
        done
    fi
    for op in "${op_list[@]}"; do
        [ -z "${op}" ] && continue
        found=""
        if [ -d "${BASEPATH}/attention/${op}/op_host" ]; then
            found="attention/${op}"
        elif [ "${ENABLE_EXPERIMENTAL}" = "TRUE" ] && [ -d "${BASEPATH}/experimental/attention/${op}/op_host" ]; then
            found="experimental/attention/${op}"
        fi
        if [ -z "${found}" ]; then
            echo "[ERROR] op ${op} not found: no directory attention/${op} (operator names are the" \
                 "snake_case directory names, e.g. flash_attention_score)"
            exit 1
        fi
        supported=$(cat "${BASEPATH}/${found}"/op_host/*_def.c 2>/dev/null \
                    | grep -o 'OP_ADD_CONFIG("[a-z0-9_]*")' | sed 's/.*("\(.*\)")/\1/')
        if ! grep -qx "${ASCEND_SOC_UNITS}" <<< "${supported}"; then
            log "Warning: op ${op} does not support soc ${ASCEND_SOC_UNITS}" \
                "(supported: $(echo ${supported} | tr ' ' ',')), skipped"
            continue
        fi
        OP_DIRS+=("${found}")
    done
    if [ "${#OP_DIRS[@]}" -eq 0 ]; then
        echo "[ERROR] no operator to build for soc ${ASCEND_SOC_UNITS}"
        exit 1
    fi
}
resolve_ops

# jobs: default and cap are 2 x CPU count (OPS_CPU_NUMBER / MAX_JOBS override, as upstream)
get_cpu_num() {
    CPU_NUM=$(( $(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo) * 2 ))
    if [[ "${OPS_CPU_NUMBER}" =~ ^[0-9]+$ ]]; then
        CPU_NUM="${OPS_CPU_NUMBER}"
    fi
    if [[ "${MAX_JOBS}" =~ ^[0-9]+$ ]] && [ "${MAX_JOBS}" -gt 0 ] && [ "${CPU_NUM}" -gt "${MAX_JOBS}" ]; then
        CPU_NUM="${MAX_JOBS}"
    fi
}
get_cpu_num
JOB_NUM="${CPU_NUM}"
if [ -n "${INPUT_JOB_NUM}" ]; then
    JOB_NUM="${INPUT_JOB_NUM}"
    if [ "${JOB_NUM}" -gt "${CPU_NUM}" ]; then
        JOB_NUM="${CPU_NUM}"
    fi
fi

ARCH=$(uname -m)
PKG_VERSION=$(sed -n 's/^set_package(ops-transformer VERSION "\([^"]*\)").*/\1/p' "${BASEPATH}/version.cmake" 2>/dev/null)
if [ -z "${PKG_VERSION}" ] && [ -f "${BASEPATH}/version.info" ]; then
    PKG_VERSION=$(sed -n 's/^Version=//p' "${BASEPATH}/version.info" | head -n 1)
fi
PKG_VERSION="${PKG_VERSION:-unknown}"
COMPILER_VERSION=""
for f in "${ASCEND_HOME_PATH}/compiler/version.info" "${ASCEND_HOME_PATH}/version.info"; do
    if [ -f "${f}" ]; then
        COMPILER_VERSION=$(sed -n 's/^Version=//p' "${f}" | head -n 1)
        [ -n "${COMPILER_VERSION}" ] && break
    fi
done
COMPILER_VERSION="${COMPILER_VERSION:-unknown}"

VENDOR_PKG_NAME="${VENDOR_NAME}_transformer"
PKG_NAME="cann-ops-transformer-${VENDOR_NAME}_linux-${ARCH}.run"
STAGE_PATH="${BUILD_PATH}/package"
VENDOR_PATH="${STAGE_PATH}/packages/vendors/${VENDOR_PKG_NAME}"
OPS_CSV=$(IFS=','; echo "${OP_DIRS[*]##*/}")
KERNEL_BINARIES=1
[ "${ENABLE_JIT}" = "TRUE" ] && KERNEL_BINARIES=0
if [ "${ENABLE_DEBUG}" = "TRUE" ]; then
    OPT_FLAGS="-O0 -g"
else
    OPT_FLAGS="-O${OPT_LEVEL}"
fi

log "Info: ops-transformer ${PKG_VERSION}: building custom package for soc ${ASCEND_SOC_UNITS}," \
    "ops ${OPS_CSV}, vendor ${VENDOR_NAME}, -j${JOB_NUM}"
log "Info: ASCEND_HOME_PATH=${ASCEND_HOME_PATH}, compiler $(command -v bisheng) (version ${COMPILER_VERSION})"

# third-party sources (configure step of the real build)
log "Info: cmake config -DCANN_3RD_LIB_PATH=${CANN_3RD_LIB_PATH}"
if ! python3 "${BASEPATH}/scripts/util/fetch_third_party.py" "${CANN_3RD_LIB_PATH}"; then
    exit 1
fi

clean
mkdir -p "${BUILD_PATH}/gen/kernels" "${VENDOR_PATH}" "${BUILD_OUT_PATH}" || exit 1

# generated op headers (Python build scripts: need the modules of requirements.txt)
for dir in "${OP_DIRS[@]}"; do
    for spec in "${BASEPATH}/${dir}"/op_host/*_binary.yaml; do
        [ -f "${spec}" ] || continue
        op_file=$(basename "${spec}" _binary.yaml)
        if ! python3 "${BASEPATH}/scripts/util/gen_kernel_config.py" header "${spec}" \
                "${BUILD_PATH}/gen/${op_file}_binary_key.h"; then
            echo "[ERROR] build failed!"
            exit 1
        fi
    done
done

cat > "${BUILD_PATH}/gen/package_config.h" <<CONFIG
/* Generated by build.sh (SIMULATOR, ascend-fa). */
#ifndef ASCENDFA_SIM_PACKAGE_CONFIG_H_
#define ASCENDFA_SIM_PACKAGE_CONFIG_H_
#define ASCENDFA_PKG_SOC "${ASCEND_SOC_UNITS}"
#define ASCENDFA_PKG_VERSION "${PKG_VERSION}"
#define ASCENDFA_PKG_VENDOR "${VENDOR_NAME}"
#define ASCENDFA_PKG_OPS "${OPS_CSV}"
#define ASCENDFA_ARCH "${ARCH}"
#define ASCENDFA_KERNEL_BINARIES ${KERNEL_BINARIES}
#endif
CONFIG

for dir in "${OP_DIRS[@]}"; do
    if [ -f "${BASEPATH}/${dir}/op_kernel/tiling_keys.def" ]; then
        bash "${BASEPATH}/scripts/make/gen_kernel_variants.sh" "${BASEPATH}/${dir}/op_kernel" \
            "${BUILD_PATH}/gen/kernels" "$([ "${KERNEL_BINARIES}" = 1 ] && echo TRUE || echo FALSE)" || exit 1
    fi
done

log "Info: make -j${JOB_NUM}"
if ! make -f "${BASEPATH}/scripts/make/ops.mk" -j"${JOB_NUM}" ROOT="${BASEPATH}" BUILD_DIR="${BUILD_PATH}" \
        VENDOR_DIR="${VENDOR_PATH}" ARCH="${ARCH}" OPT_FLAGS="${OPT_FLAGS}" OP_DIRS="${OP_DIRS[*]}" \
        VERBOSE="${VERBOSE}"; then
    echo "[ERROR] build failed"
    exit 1
fi

# kernel binaries and their configs for the one --soc of this build (not in a --jit package)
if [ "${KERNEL_BINARIES}" = 1 ]; then
    KERNEL_DIR="${VENDOR_PATH}/op_impl/ai_core/tbe/kernel"
    for dir in "${OP_DIRS[@]}"; do
        for spec in "${BASEPATH}/${dir}"/op_host/*_binary.yaml; do
            [ -f "${spec}" ] || continue
            objs=()
            for obj in "${BUILD_PATH}/obj/${dir}/op_kernel/${dir##*/}.o" "${BUILD_PATH}"/obj/build/gen/kernels/fa_kernel_*.o; do
                [ -f "${obj}" ] && objs+=("${obj}")
            done
            if [ "${#objs[@]}" -eq 0 ] || ! python3 "${BASEPATH}/scripts/util/gen_kernel_config.py" layout "${spec}" \
                    "${ASCEND_SOC_UNITS}" "${KERNEL_DIR}" "${objs[@]}"; then
                echo "[ERROR] build failed!"
                exit 1
            fi
        done
    done
fi

# headers, version.info, installer
mkdir -p "${VENDOR_PATH}/op_api/include/aclnnop" "${VENDOR_PATH}/op_proto/inc"
for dir in "${OP_DIRS[@]}"; do
    for h in "${BASEPATH}/${dir}"/op_host/op_api/*.h; do
        [ -f "${h}" ] && cp "${h}" "${VENDOR_PATH}/op_api/include/aclnnop/"
    done
done
cp "${BASEPATH}/common/include/op_def.h" "${VENDOR_PATH}/op_proto/inc/op_proto.h"
cat > "${VENDOR_PATH}/version.info" <<VERSION
custom_opp_compiler_version=${COMPILER_VERSION}
ops_transformer_version=${PKG_VERSION}
soc_version=${ASCEND_SOC_UNITS}
ops=${OPS_CSV}
kernel_binaries=$([ "${KERNEL_BINARIES}" = 1 ] && echo true || echo false)
VERSION
sed "s/^vendor_name=customize$/vendor_name=${VENDOR_PKG_NAME}/" "${BASEPATH}/scripts/package/install.sh" \
    > "${STAGE_PATH}/install.sh"
cp "${BASEPATH}/scripts/package/help.info" "${STAGE_PATH}/help.info"

# modes as cmake install() gives them: directories 755, files 644, shared libraries 755; the scripts
# (install.sh, help.info) OWNER_EXECUTE OWNER_READ GROUP_READ = 540 (cmake/custom_build.cmake)
find "${STAGE_PATH}" -type d -exec chmod 755 {} +
find "${STAGE_PATH}" -type f -exec chmod 644 {} +
find "${STAGE_PATH}" -type f -name '*.so' -exec chmod 755 {} +
chmod 540 "${STAGE_PATH}/install.sh" "${STAGE_PATH}/help.info"

log "Info: packing ${PKG_NAME}"
if ! bash "${BASEPATH}/scripts/package/pack.sh" "${STAGE_PATH}" "${BUILD_OUT_PATH}/${PKG_NAME}" "version:1.0"; then
    echo "[ERROR] packing ${PKG_NAME} failed"
    exit 1
fi
echo "Self-extractable archive \"${PKG_NAME}\" successfully created."
log "Info: build_out/${PKG_NAME}"
exit 0
