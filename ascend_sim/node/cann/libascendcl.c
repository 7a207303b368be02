/*
 * SIMULATOR (ascend-fa): a tiny stand-in for CANN's libascendcl.so (AscendCL runtime).
 *
 * The simulated node's sim-apply compiles this file into <cann>/lib64/libascendcl.so so that
 * `source <cann>/set_env.sh` (which puts <cann>/lib64 on LD_LIBRARY_PATH) is what makes the
 * torch_npu stand-in importable, as with the real wheel. Only a handful of entry points exist;
 * they read the simulated host description (/etc/ascend-sim/host.json, or ASCEND_SIM_HOST_JSON).
 * Not used on real Atlas hosts.
 *
 * Build: cc -shared -fPIC -O2 -o libascendcl.so libascendcl.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACL_SUCCESS 0
#define ACL_ERROR_INVALID_PARAM 100000
#define ACL_ERROR_RT_INVALID_DEVICEID 107001
#define ACL_ERROR_RT_DEVICE_NOT_EXIST 507033 /* simulator: "no device" */

static int g_initialized;
static int32_t g_current_device = -1;
static char g_err[512];

static const char *host_json_path(void)
{
    const char *p = getenv("ASCEND_SIM_HOST_JSON");
    return (p != NULL && p[0] != '\0') ? p : "/etc/ascend-sim/host.json";
}

/* Reads an integer field `"key": N` from host.json; returns dflt when absent. */
static long host_json_int(const char *key, long dflt)
{
    FILE *f = fopen(host_json_path(), "r");
    char buf[16384];
    size_t n;
    char pat[64];
    const char *hit;
    if (f == NULL) {
        return dflt;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    hit = strstr(buf, pat);
    if (hit == NULL) {
        return dflt;
    }
    hit = strchr(hit + strlen(pat), ':');
    if (hit == NULL) {
        return dflt;
    }
    return strtol(hit + 1, NULL, 10);
}

int aclInit(const char *configPath)
{
    (void)configPath;
    g_initialized = 1;
    return ACL_SUCCESS;
}

int aclFinalize(void)
{
    g_initialized = 0;
    return ACL_SUCCESS;
}

int aclrtGetDeviceCount(uint32_t *count)
{
    long n;
    if (count == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    n = host_json_int("npu_count", 0);
    if (n <= 0) {
        snprintf(g_err, sizeof(g_err), "EE1001: [PID: %d] The argument is invalid.Reason: no NPU device found", 0);
        *count = 0;
        return ACL_ERROR_RT_DEVICE_NOT_EXIST;
    }
    *count = (uint32_t)n;
    return ACL_SUCCESS;
}

int aclrtSetDevice(int32_t deviceId)
{
    long n = host_json_int("npu_count", 0);
    if (deviceId < 0 || deviceId >= n) {
        snprintf(g_err, sizeof(g_err),
                 "EE1001: The argument is invalid.Reason: Set device failed, invalid device, set device=%d, "
                 "valid device range is [0, %ld)", (int)deviceId, n);
        return ACL_ERROR_RT_INVALID_DEVICEID;
    }
    g_current_device = deviceId;
    return ACL_SUCCESS;
}

int aclrtGetDevice(int32_t *deviceId)
{
    if (deviceId == NULL) {
        return ACL_ERROR_INVALID_PARAM;
    }
    if (g_current_device < 0) {
        return ACL_ERROR_RT_INVALID_DEVICEID;
    }
    *deviceId = g_current_device;
    return ACL_SUCCESS;
}

int aclrtResetDevice(int32_t deviceId)
{
    if (deviceId == g_current_device) {
        g_current_device = -1;
    }
    return ACL_SUCCESS;
}

int aclrtSynchronizeDevice(void)
{
    return ACL_SUCCESS;
}

const char *aclGetRecentErrMsg(void)
{
    return g_err[0] != '\0' ? g_err : NULL;
}

/* Reads a string field `"key": "value"` from host.json into out; returns 0 when absent. */
static int host_json_str(const char *key, char *out, size_t outlen)
{
    FILE *f = fopen(host_json_path(), "r");
    char buf[16384];
    size_t n;
    size_t len = 0;
    char pat[64];
    const char *hit;
    if (f == NULL || outlen == 0) {
        if (f != NULL) {
            fclose(f);
        }
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    hit = strstr(buf, pat);
    if (hit == NULL || (hit = strchr(hit + strlen(pat), ':')) == NULL || (hit = strchr(hit, '"')) == NULL) {
        return 0;
    }
    hit++;
    while (hit[len] != '\0' && hit[len] != '"' && len + 1 < outlen) {
        out[len] = hit[len];
        len++;
    }
    out[len] = '\0';
    return len > 0;
}

/*
 * aclrtGetSocName (AscendCL runtime, acl_rt.h: `const char *aclrtGetSocName()`): the SoC version of the
 * current device as CANN names it, e.g. "Ascend910B3", "Ascend910_9392" (the names CANN's ops packages and
 * kernel binaries are keyed by). Simulated from host.json: "soc_version" when given, else derived from
 * "model" the way ascend_sim/node/torch_npu/_host.py soc_version() does (A3-9392 -> Ascend910_9392,
 * 910 -> Ascend910A, 910B3 -> Ascend910B3). NULL when the host has no model (no NPU).
 */
const char *aclrtGetSocName(void)
{
    static char soc[64];
    char model[48];
    if (host_json_str("soc_version", soc, sizeof(soc))) {
        return soc;
    }
    if (!host_json_str("model", model, sizeof(model))) {
        return NULL;
    }
    if (strncmp(model, "A3-", 3) == 0) {
        snprintf(soc, sizeof(soc), "Ascend910_%s", model + 3);
    } else if (strcmp(model, "910") == 0) {
        snprintf(soc, sizeof(soc), "Ascend910A");
    } else {
        snprintf(soc, sizeof(soc), "Ascend%s", model);
    }
    return soc;
}

/* Simulator marker, so tools can tell the stand-in from a real libascendcl.so. */
const char *ascend_sim_libascendcl(void)
{
    return "ascend-fa simulator libascendcl stub";
}
