/*
 * SIMULATOR (ascend-fa): package identity compiled into libcust_opapi.so, so a runtime can check the
 * package against the device (the real runtime compares the kernel binaries' socversion).
 */
#include "ascendfa_sim_common.h"

ASCENDFA_API const char *ascendfa_sim_package_soc(void)
{
    return ASCENDFA_PKG_SOC;
}

ASCENDFA_API const char *ascendfa_sim_package_version(void)
{
    return ASCENDFA_PKG_VERSION;
}

ASCENDFA_API const char *ascendfa_sim_package_vendor(void)
{
    return ASCENDFA_PKG_VENDOR;
}

ASCENDFA_API const char *ascendfa_sim_package_ops(void)
{
    return ASCENDFA_PKG_OPS;
}

ASCENDFA_API int ascendfa_sim_package_kernel_binaries(void)
{
    return ASCENDFA_KERNEL_BINARIES;
}
