/* SPDX-License-Identifier: MIT */
/* The library's run-time version. */
#include <devmm/devmm.h>

const char *dmm_version(void)
{
	return DEVMM_VERSION;
}
