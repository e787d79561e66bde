/* SPDX-License-Identifier: MIT */
/*
 * A program with its own lock_page, find_vma and handle_mm_fault (names
 * devmm uses inside) links the static libdevmm.a and works: the archive's
 * internals are local (src/static-archive.sh). Before that, the link failed
 * with "multiple definition of `lock_page'".
 */
#include <devmm/devmm.h>
#include <stdio.h>
int lock_page(int x);
int find_vma(void);
int handle_mm_fault(void);

int lock_page(int x) { return x + 1; }
int find_vma(void) { return 7; }
int handle_mm_fault(void) { return 3; }

int main(void)
{
	struct dmm_system *sys;
	struct dmm_mm *mm;
	uint64_t addr;
	uint32_t v = 0;

	if (dmm_system_create(NULL, &sys) || dmm_mm_create(sys, &mm))
		return 1;
	if (dmm_mmap(mm, 0, DMM_PAGE_SIZE, DMM_PROT_READ | DMM_PROT_WRITE,
		     DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS, NULL, 0, &addr) ||
	    dmm_store32(mm, addr, 5) || dmm_load32(mm, addr, &v))
		return 1;
	dmm_system_destroy(sys);
	/* Ours, not devmm's. */
	if (v != 5 || lock_page(1) != 2 || find_vma() != 7 || handle_mm_fault() != 3)
		return 1;
	printf("ok\n");
	return 0;
}
