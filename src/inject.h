/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for the layers above the core (src/policy): the one
 * question they may ask of it, without the core's internal.h.
 */
#ifndef DEVMM_INJECT_H
#define DEVMM_INJECT_H

#include <stdbool.h>

#include <devmm/devmm.h>

/* Should this allocation at @site of @sys fail? (inject.c) */
bool inject_should_fail(struct dmm_system *sys, enum dmm_inject_site site);

#endif /* DEVMM_INJECT_H */
