/* device.h: internal interface of device.c - capability queries and the device selector. */
#ifndef OFTAWQ_DEVICE_H
#define OFTAWQ_DEVICE_H

#include "runtime/context.h"

typedef enum oftawq__select_kind {
  OFTAWQ__SELECT_DEFAULT,   /* first GPU, else first device */
  OFTAWQ__SELECT_CPU,
  OFTAWQ__SELECT_GPU,
  OFTAWQ__SELECT_INDEX,     /* "P:D" */
  OFTAWQ__SELECT_NAME       /* case-insensitive substring of the device name */
} oftawq__select_kind;

typedef struct oftawq__selector {
  oftawq__select_kind kind;
  unsigned platform, device;
  const char *name;
} oftawq__selector;

int oftawq__selector_parse(const char *selector, oftawq__selector *out);
int oftawq__selector_matches(const oftawq__selector *sel, const oftawq_device_info *info);

/* Fills every field of info but platform_index/device_index, which the caller sets first. */
void oftawq__device_query(cl_platform_id platform, cl_device_id dev, oftawq_device_info *info);
/* The device's floats per SIMD register (CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT; a CPU: 4 on NEON, 8 on AVX2, 16 on
 * AVX-512), 0 where it cannot be asked. Not in oftawq_device_info: callers built against its older size. */
unsigned oftawq__device_float_width(cl_device_id dev);

oftawq_status oftawq__device_foreach(const char *opencl_library, char *why, size_t why_capacity,
                                     int (*fn)(void *user, cl_platform_id, cl_device_id, unsigned, unsigned),
                                     void *user);

/* Resolves a selector (NULL/"" = $OFTAWQ_DEVICE, then the default) to one device. */
oftawq_status oftawq__device_select(const char *selector, const char *opencl_library, cl_platform_id *platform,
                                    cl_device_id *device, oftawq_device_info *info, char *why, size_t why_capacity);

/* The smallest oftawq_device_info oftawq_device_list fills: size and the two indices. */
#define OFTAWQ__DEVICE_INFO_MIN_SIZE offsetof(oftawq_device_info, platform_name)

#endif /* OFTAWQ_DEVICE_H */
