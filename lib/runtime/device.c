/* device.c: enumerating OpenCL platforms and devices, reading their capabilities, and the device selector. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/device.h"

void oftawq_device_info_init(oftawq_device_info *info)
{
  if (!info) return;
  memset(info, 0, sizeof *info);
  info->size = sizeof *info;
}

static void device_string(cl_device_id dev, cl_device_info what, char *out)
{
  size_t n = 0;
  out[0] = '\0';
  if (clGetDeviceInfo(dev, what, OFTAWQ_INFO_STRING - 1, out, &n) != CL_SUCCESS) {
    /* Longer than our field: read it whole and truncate. */
    char *tmp;
    if (clGetDeviceInfo(dev, what, 0, NULL, &n) != CL_SUCCESS || !(tmp = malloc(n + 1))) return;
    if (clGetDeviceInfo(dev, what, n, tmp, NULL) == CL_SUCCESS) {
      tmp[n] = '\0';
      snprintf(out, OFTAWQ_INFO_STRING, "%s", tmp);
    }
    free(tmp);
    return;
  }
  out[n < OFTAWQ_INFO_STRING ? n : OFTAWQ_INFO_STRING - 1] = '\0';
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *out)
{
  size_t n = 0;
  out[0] = '\0';
  if (clGetPlatformInfo(p, what, OFTAWQ_INFO_STRING - 1, out, &n) != CL_SUCCESS) {
    snprintf(out, OFTAWQ_INFO_STRING, "?");
    return;
  }
  out[n < OFTAWQ_INFO_STRING ? n : OFTAWQ_INFO_STRING - 1] = '\0';
}

static int has_extension(const char *extensions, const char *name)
{
  size_t len = strlen(name);
  const char *p = extensions;
  while (p && (p = strstr(p, name)) != NULL) {
    if ((p == extensions || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) return 1;
    p += len;
  }
  return 0;
}

unsigned oftawq__device_float_width(cl_device_id dev)
{
  cl_uint w = 0;
  return clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof w, &w, NULL) == CL_SUCCESS ? w : 0;
}

void oftawq__device_query(cl_platform_id platform, cl_device_id dev, oftawq_device_info *info)
{
  cl_device_type type = 0;
  cl_ulong u64 = 0;
  cl_uint u32 = 0;
  cl_bool b = CL_FALSE;
  cl_device_local_mem_type lmt = CL_GLOBAL;
  size_t n = 0;
  char *ext = NULL;
  unsigned platform_index = info->platform_index, device_index = info->device_index;

  oftawq_device_info_init(info);
  info->platform_index = platform_index;
  info->device_index = device_index;
  platform_string(platform, CL_PLATFORM_NAME, info->platform_name);
  platform_string(platform, CL_PLATFORM_VERSION, info->platform_version);
  device_string(dev, CL_DEVICE_NAME, info->name);
  device_string(dev, CL_DEVICE_VENDOR, info->vendor);
  device_string(dev, CL_DEVICE_VERSION, info->version);
  device_string(dev, CL_DRIVER_VERSION, info->driver_version);
  device_string(dev, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version);
  /* "OpenCL C M.m <vendor-specific>" */
  if (sscanf(info->opencl_c_version, "OpenCL C %d.%d", &info->opencl_c_major, &info->opencl_c_minor) != 2)
    info->opencl_c_major = info->opencl_c_minor = 0;

  if (clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL) == CL_SUCCESS) {
    info->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    info->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  }
  if (clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS) info->local_mem_size = u64;
  if (clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS) info->global_mem_size = u64;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof u64, &u64, NULL) == CL_SUCCESS) info->max_alloc_size = u64;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof n, &n, NULL) == CL_SUCCESS) info->max_work_group_size = n;
  if (clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof u32, &u32, NULL) == CL_SUCCESS) info->compute_units = u32;
  if (clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof b, &b, NULL) == CL_SUCCESS) info->unified_memory = b == CL_TRUE;
  if (clGetDeviceInfo(dev, CL_DEVICE_LOCAL_MEM_TYPE, sizeof lmt, &lmt, NULL) == CL_SUCCESS) info->local_mem_is_local = lmt == CL_LOCAL;

  if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &n) == CL_SUCCESS && (ext = malloc(n + 1)) != NULL) {
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
      ext[n] = '\0';
      info->has_fp16 = has_extension(ext, "cl_khr_fp16");
      info->has_fp64 = has_extension(ext, "cl_khr_fp64");
      info->has_subgroups = has_extension(ext, "cl_khr_subgroups") || has_extension(ext, "cl_intel_subgroups");
    }
    free(ext);
  }
}

/* Calls fn for every device of every platform until it returns non-zero. */
oftawq_status oftawq__device_foreach(const char *opencl_library, char *why, size_t why_capacity,
                                     int (*fn)(void *user, cl_platform_id, cl_device_id, unsigned, unsigned),
                                     void *user)
{
  cl_platform_id *platforms = NULL;
  cl_uint np = 0, p;
  cl_int err;
  oftawq_status status = oftawq__opencl_load(opencl_library, why, why_capacity);
  if (status < 0) return status;
  err = clGetPlatformIDs(0, NULL, &np);
  if (err != CL_SUCCESS || np == 0) {
    return oftawq__why(why, why_capacity, OFTAWQ_E_NO_DEVICE,
                       "no OpenCL platform is installed (clGetPlatformIDs: %d, %s)", (int)err,
                       oftawq__cl_error_name(err));
  }
  platforms = calloc(np, sizeof *platforms);
  if (!platforms) return OFTAWQ_E_OUT_OF_MEMORY;
  if (clGetPlatformIDs(np, platforms, NULL) != CL_SUCCESS) np = 0;
  for (p = 0; p < np; p++) {
    cl_uint nd = 0, d;
    cl_device_id *devs;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0) continue;
    devs = calloc(nd, sizeof *devs);
    if (!devs) {
      free(platforms);
      return OFTAWQ_E_OUT_OF_MEMORY;
    }
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL) != CL_SUCCESS) nd = 0;
    for (d = 0; d < nd; d++) {
      if (fn(user, platforms[p], devs[d], p, d)) {
        free(devs);
        free(platforms);
        return OFTAWQ_OK;
      }
    }
    free(devs);
  }
  free(platforms);
  return OFTAWQ_OK;
}

typedef struct list_state {
  unsigned char *infos;      /* the caller's array: `stride` bytes per entry, its struct's size */
  size_t stride;
  size_t capacity, count;
} list_state;

static int list_one(void *user, cl_platform_id platform, cl_device_id dev, unsigned p, unsigned d)
{
  list_state *st = user;
  if (st->count < st->capacity) { /* the whole struct here, then as much of it as the caller's holds */
    oftawq_device_info info;
    info.platform_index = p;
    info.device_index = d;
    oftawq__device_query(platform, dev, &info);
    info.size = st->stride;
    memcpy(st->infos + st->count * st->stride, &info, st->stride < sizeof info ? st->stride : sizeof info);
  }
  st->count++;
  return 0;
}

oftawq_status oftawq_device_list(const char *opencl_library, oftawq_device_info *infos, size_t capacity, size_t *count)
{
  list_state st;
  oftawq_status status;
  size_t i;
  if (count) *count = 0;
  if (!count || (capacity && !infos)) return OFTAWQ_E_INVALID_ARGUMENT;
  st.infos = (unsigned char *)infos;
  st.stride = capacity ? infos->size : sizeof *infos;
  st.capacity = capacity;
  st.count = 0;
  /* an older caller's smaller struct: its array's stride is its size, and only that much of each entry is ours */
  if (capacity && st.stride < OFTAWQ__DEVICE_INFO_MIN_SIZE) return OFTAWQ_E_INVALID_ARGUMENT;
  for (i = 1; i < capacity; i++)
    if (((const oftawq_device_info *)(const void *)(st.infos + i * st.stride))->size != st.stride)
      return OFTAWQ_E_INVALID_ARGUMENT;
  status = oftawq__device_foreach(opencl_library, NULL, 0, list_one, &st);
  if (status < 0) return status;
  *count = st.count;
  return st.count ? OFTAWQ_OK : OFTAWQ_E_NO_DEVICE;
}

static int contains_nocase(const char *hay, const char *needle)
{
  size_t n = strlen(needle), i, j;
  if (n == 0) return 1;
  for (i = 0; hay[i]; i++) {
    for (j = 0; j < n && hay[i + j]; j++)
      if (tolower((unsigned char)hay[i + j]) != tolower((unsigned char)needle[j])) break;
    if (j == n) return 1;
  }
  return 0;
}

int oftawq__selector_parse(const char *selector, oftawq__selector *out)
{
  unsigned p, d;
  char tail;
  memset(out, 0, sizeof *out);
  if (!selector || !*selector) {
    out->kind = OFTAWQ__SELECT_DEFAULT;
  } else if (!strcasecmp(selector, "cpu")) {
    out->kind = OFTAWQ__SELECT_CPU;
  } else if (!strcasecmp(selector, "gpu")) {
    out->kind = OFTAWQ__SELECT_GPU;
  } else if (sscanf(selector, "%u:%u%c", &p, &d, &tail) == 2) {
    out->kind = OFTAWQ__SELECT_INDEX;
    out->platform = p;
    out->device = d;
  } else {
    out->kind = OFTAWQ__SELECT_NAME;
    out->name = selector;
  }
  return 1;
}

int oftawq__selector_matches(const oftawq__selector *sel, const oftawq_device_info *info)
{
  switch (sel->kind) {
  case OFTAWQ__SELECT_DEFAULT: return 1;
  case OFTAWQ__SELECT_CPU: return info->is_cpu;
  case OFTAWQ__SELECT_GPU: return info->is_gpu;
  case OFTAWQ__SELECT_INDEX: return info->platform_index == sel->platform && info->device_index == sel->device;
  case OFTAWQ__SELECT_NAME: return contains_nocase(info->name, sel->name);
  }
  return 0;
}

typedef struct select_state {
  oftawq__selector sel;
  int found, found_gpu;
  cl_platform_id platform, first_platform;
  cl_device_id device, first_device;
  oftawq_device_info info, first_info;
} select_state;

static int select_one(void *user, cl_platform_id platform, cl_device_id dev, unsigned p, unsigned d)
{
  select_state *st = user;
  oftawq_device_info info;
  info.platform_index = p;
  info.device_index = d;
  oftawq__device_query(platform, dev, &info);
  if (!oftawq__selector_matches(&st->sel, &info)) return 0;
  if (st->sel.kind == OFTAWQ__SELECT_DEFAULT && !info.is_gpu) {
    /* The default prefers a GPU: remember the first device and go on looking. */
    if (!st->found) {
      st->found = 1;
      st->first_platform = platform;
      st->first_device = dev;
      st->first_info = info;
    }
    return 0;
  }
  st->found = st->found_gpu = 1;
  st->platform = platform;
  st->device = dev;
  st->info = info;
  return 1;
}

oftawq_status oftawq__device_select(const char *selector, const char *opencl_library, cl_platform_id *platform,
                                    cl_device_id *device, oftawq_device_info *info, char *why, size_t why_capacity)
{
  select_state st;
  oftawq_status status;
  const char *env = getenv("OFTAWQ_DEVICE");
  memset(&st, 0, sizeof st);
  if (!selector || !*selector) selector = env;
  oftawq__selector_parse(selector, &st.sel);
  status = oftawq__device_foreach(opencl_library, why, why_capacity, select_one, &st);
  if (status < 0) return status;
  if (!st.found)
    return oftawq__why(why, why_capacity, OFTAWQ_E_NO_DEVICE,
                       "no OpenCL device matches the selector '%s' (try 'oftawq info')", selector ? selector : "");
  if (!st.found_gpu) {
    st.platform = st.first_platform;
    st.device = st.first_device;
    st.info = st.first_info;
  }
  *platform = st.platform;
  *device = st.device;
  *info = st.info;
  return OFTAWQ_OK;
}
