/* SPDX-License-Identifier: MIT */
/* The mirror's device page table: a 3-level radix tree keyed by virtual
 * page number, each entry a frame and a tag. The caller serialises. */
#ifndef DEVMM_MIRROR_PTAB_H
#define DEVMM_MIRROR_PTAB_H

#include <stdint.h>

#include "mirror.h"

struct mirror_ptab *ptab_create(void);
void ptab_destroy(struct mirror_ptab *pt);
/* 0 when the page has no entry; else the pfn and *tag. */
int ptab_get(struct mirror_ptab *pt, uint64_t addr, uint64_t *pfn, enum mirror_tag *tag);
/* 0, or -ENOMEM. */
int ptab_set(struct mirror_ptab *pt, uint64_t addr, uint64_t pfn, enum mirror_tag tag);
void ptab_clear(struct mirror_ptab *pt, uint64_t addr);
/* Erase every entry in [start, end), visiting only populated nodes. */
void ptab_clear_range(struct mirror_ptab *pt, uint64_t start, uint64_t end);
/* Make every WRITE or ATOMIC entry in [start, end) READ. */
void ptab_downgrade_range(struct mirror_ptab *pt, uint64_t start, uint64_t end);
/* Erase every entry whose frame is pfn in [start, end). */
void ptab_clear_pfn(struct mirror_ptab *pt, uint64_t start, uint64_t end, uint64_t pfn);

#endif
