/*
 * SIMULATOR (ascend-fa): always part of libcust_opmaster_rt2.0.so (the tiling library), so the
 * library exists even for a package whose ops have no tiling of their own.
 */
#include "ascendfa_sim_common.h"

ASCENDFA_API const char *ascendfa_sim_opmaster_soc(void)
{
    return ASCENDFA_PKG_SOC;
}
