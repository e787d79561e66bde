/* SPDX-License-Identifier: MIT */
/*
 * fork_cow - fork and copy-on-write, step by step, through the public API.
 *
 * A process maps four anonymous pages and writes to them; it forks; the
 * parent writes one page and gets a private copy while the child keeps the
 * original; the child exits and the parent's remaining pages, no longer
 * shared, are made writable in place on the next write instead of copied.
 * After every step the page tables and page counters are printed, and at the
 * end the system's invariants are checked and its statistics shown.
 *
 * Build against an installed devmm:
 *   cc fork_cow.c $(pkg-config --cflags --libs devmm) -o fork_cow
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devmm/devmm.h>

#define NPAGES 4

/* Exit with a message when a devmm call failed (they return -errno). */
static void must(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "fork_cow: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

static void step(const char *title, const char *explanation)
{
	printf("\n== %s\n   %s\n", title, explanation);
}

/* One line per page: its PTE, the frame's counters and the first bytes. */
static void show(struct dmm_system *sys, struct dmm_mm *mm, const char *who, uint64_t base)
{
	printf("   %s (mm %u):\n", who, dmm_mm_id(mm));
	for (int i = 0; i < NPAGES; i++) {
		uint64_t addr = base + (uint64_t)i * DMM_PAGE_SIZE;
		struct dmm_pte_info pte;
		struct dmm_page_info page;
		char data[24] = "";

		must(dmm_pte_query(mm, addr, &pte), "dmm_pte_query");
		if (pte.kind != DMM_PTE_PRESENT) {
			printf("     page %d  %#" PRIx64 "  %s\n", i, addr, dmm_pte_kind_name(pte.kind));
			continue;
		}
		must(dmm_page_query(sys, pte.pfn, &page), "dmm_page_query");
		/* Reading through the mapping never copies: a read is not a write. */
		must(dmm_read(mm, addr, data, sizeof(data) - 1), "dmm_read");
		printf("     page %d  %#" PRIx64 "  pfn %-4" PRIu64 " refcount %" PRIu32
		       "  mapcount %" PRId32 "  %-8s %-9s \"%s\"\n",
		       i, addr, pte.pfn, page.refcount, page.mapcount,
		       pte.write ? "writable" : "readonly",
		       (page.flags & DMM_PAGE_ANON_EXCLUSIVE) ? "exclusive" : "shared", data);
	}
}

static uint64_t pfn_of(struct dmm_mm *mm, uint64_t addr)
{
	struct dmm_pte_info pte;

	must(dmm_pte_query(mm, addr, &pte), "dmm_pte_query");
	return pte.kind == DMM_PTE_PRESENT ? pte.pfn : UINT64_MAX;
}

static struct dmm_stats stats_now(struct dmm_system *sys)
{
	struct dmm_stats st;

	must(dmm_stats_get(sys, &st), "dmm_stats_get");
	return st;
}

static void write_page(struct dmm_mm *mm, uint64_t base, int i, const char *who)
{
	char text[24];

	snprintf(text, sizeof(text), "page %d by %s", i, who);
	must(dmm_write(mm, base + (uint64_t)i * DMM_PAGE_SIZE, text, strlen(text) + 1),
	     "dmm_write");
}

int main(void)
{
	struct dmm_system_config cfg = { .nr_frames = 1024 };
	struct dmm_system *sys;
	struct dmm_mm *parent, *child;
	struct dmm_stats before, after;
	uint64_t base, old_pfn;
	char report[4096];
	char data[24] = "";
	int ret;

	printf("devmm %s (headers %s): fork and copy-on-write\n", dmm_version(), DEVMM_VERSION);

	must(dmm_system_create(&cfg, &sys), "dmm_system_create");
	must(dmm_mm_create(sys, &parent), "dmm_mm_create");
	must(dmm_mmap(parent, 0, NPAGES * DMM_PAGE_SIZE, DMM_PROT_READ | DMM_PROT_WRITE,
		      DMM_MAP_PRIVATE | DMM_MAP_ANONYMOUS, NULL, 0, &base),
	     "dmm_mmap");

	step("1. mmap and write",
	     "Each write fault gives the parent a fresh frame of its own: writable, exclusive.");
	for (int i = 0; i < NPAGES; i++)
		write_page(parent, base, i, "parent");
	show(sys, parent, "parent", base);

	step("2. fork",
	     "The child shares every frame: both PTEs are write-protected, refcount and mapcount 2.");
	must(dmm_fork(parent, &child), "dmm_fork");
	show(sys, parent, "parent", base);
	show(sys, child, "child", base);

	step("3. the parent writes page 0",
	     "The write fault copies the shared frame: the parent gets a new pfn, the child keeps the old one.");
	before = stats_now(sys);
	old_pfn = pfn_of(parent, base);
	write_page(parent, base, 0, "parent again");
	after = stats_now(sys);
	show(sys, parent, "parent", base);
	show(sys, child, "child", base);
	must(dmm_read(child, base, data, sizeof(data) - 1), "dmm_read");
	printf("   parent page 0: pfn %" PRIu64 " -> %" PRIu64 "; child still reads \"%s\"; "
	       "cow_copy +%" PRIu64 "\n",
	       old_pfn, pfn_of(parent, base), data, after.cow_copy - before.cow_copy);

	step("4. the child exits",
	     "Its references are dropped: the parent's pages 1-3 are mapped once, but still read-only.");
	dmm_mm_exit(child);
	show(sys, parent, "parent", base);

	step("5. the parent writes pages 1-3",
	     "Each write fault finds refcount 1 and reuses the frame in place: same pfn, no copy.");
	before = stats_now(sys);
	for (int i = 1; i < NPAGES; i++)
		write_page(parent, base, i, "parent again");
	after = stats_now(sys);
	show(sys, parent, "parent", base);
	printf("   cow_reuse +%" PRIu64 ", cow_copy +%" PRIu64 "\n",
	       after.cow_reuse - before.cow_reuse, after.cow_copy - before.cow_copy);

	step("6. check and statistics",
	     "dmm_check validates every invariant (mapcounts, refcounts, rss, page tables, allocator).");
	ret = dmm_check(sys, report, sizeof(report));
	printf("   dmm_check: %s\n", ret ? report : "all invariants hold");
	after = stats_now(sys);
	dmm_stats_print(&after, stdout);

	dmm_mm_exit(parent);
	dmm_system_destroy(sys);
	return ret ? 1 : 0;
}
