/* SPDX-License-Identifier: MIT */
/*
 * dmm_check: the invariant validator (semantics.md §4), a real O(frames +
 * entries) function that tests and scripts run after every step. It needs
 * a quiescent system; it takes the mm list lock and every mmap_lock for
 * read so that a misuse shows up as a wait, not as a crash.
 *
 * What it proves:
 *  - VMAs: sorted, page aligned, non-overlapping, in user space, linked to
 *    their anon_vma and file;
 *  - entries: inside a VMA, permissions within the VMA's (PROT_NONE and
 *    not-readable bits exactly as the VMA's protection), the zero page only
 *    as a read-only special entry, frames allocated, reverse-map identity
 *    (anon_vma / file and linear index) matching the address;
 *  - mapcount of every frame = the entries that map it; refcount >= mapcount
 *    + pins*1024 + the page cache's reference; writable anonymous entries
 *    only on anon-exclusive pages; anon-exclusive pages mapped at most once;
 *    migration entries only on locked frames; no frame locked otherwise;
 *  - large folios (large-folios.md §4.1, §4.3 and §4.4 for PTEs): shape
 *    (order 2..9, aligned head, every tail pointing at it with no
 *    reference, pin or folio flag of its own), each page's mapcount = the
 *    PTEs mapping it, folio mapcount = all of them, nr_pages_mapped, the
 *    folio's refcount >= its mapcount + exact pincount; device large folios
 *    are order 9 and count 2^order pgmap references;
 *    the deferred-split queue holds only live large anon folios, not
 *    device-private (§4.10), and a partially mapped folio is queued and
 *    not PMD-mapped;
 *  - rss counters = the entries counted per type;
 *  - page tables: every table below the pgd translates part of some VMA
 *    (munmap freed the others), and the mm's count of tables is right;
 *  - the allocator: every free frame listed exactly once and clean, the
 *    free count matching, never-used frames untouched; the zero page never
 *    counted;
 *  - the page cache: every cached page knows its file and index;
 *  - device memory: no present entry maps a device-private frame;
 *    device-private and device-exclusive entries reference anonymous
 *    frames of the right type; free device frames (refcount 0) have no
 *    entry of any kind, no identity and no lock; device-private frames are
 *    never pinned; device frames are never on the LRU; each pgmap's
 *    reference count = its allocated frames + transient references.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

#define MAX_REPORTS 32
#define LISTED_COUNT 0x7f /* listed[]: appearances on the free lists */
#define LISTED_FRESH 0x80 /* listed[]: a never-used frame */

struct checker {
	struct dmm_system *sys;
	char *buf;
	size_t size, len;
	unsigned int errors;
	uint32_t *maps;	 /* mapping entries per slot */
	uint32_t *migs;	 /* migration entries per slot */
	uint32_t *pmds;	 /* PMD entries mapping the folio headed at a slot */
	uint8_t *listed; /* free-list appearances per pfn (RAM) */
	uint64_t nslots; /* RAM pfns, then each pgmap's pages */
	long rss[DMM_NR_MM_COUNTERS];
	struct dmm_mm *mm;
	uint64_t pins; /* FOLL_PIN pins held on all frames */
};

__attribute__((format(printf, 2, 3))) static void report(struct checker *ck, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	if (ck->errors++ >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (!ck->buf) {
		fprintf(stderr, "dmm_check: %s\n", line);
		return;
	}
	if (ck->len + 1 < ck->size) {
		int w = snprintf(ck->buf + ck->len, ck->size - ck->len, "%s\n", line);

		if (w > 0)
			ck->len = DMM_MIN(ck->size - 1, ck->len + (size_t)w);
	}
}

static bool list_contains(const struct dmm_list *head, const struct dmm_list *n)
{
	const struct dmm_list *pos;

	list_for_each(pos, head)
		if (pos == n)
			return true;
	return false;
}

/* Counting slot of a frame: its pfn in RAM, else after RAM per pgmap. */
static uint64_t slot_of(struct checker *ck, struct dmm_page *p)
{
	if (!page_is_zone_device(p))
		return page_to_pfn(ck->sys, p);
	return p->pgmap->check_base + (uint64_t)(p - p->pgmap->pages);
}

static void check_vmas(struct checker *ck, struct dmm_mm *mm)
{
	uint64_t prev_end = 0;
	struct dmm_vma *v;
	int r = vma_tree_validate(&mm->vmas);

	if (r)
		report(ck, "mm %u: VMA tree broken (%d)", mm->id, r);
	for (v = vma_tree_first(&mm->vmas); v; v = vma_tree_next(&mm->vmas, v)) {

		if (v->mm != mm || !PAGE_ALIGNED(v->start) || !PAGE_ALIGNED(v->end) || v->start >= v->end ||
		    v->start < prev_end || v->end > DMM_TASK_SIZE)
			report(ck, "mm %u: bad VMA [%#lx, %#lx) after %#lx", mm->id,
			       (unsigned long)v->start, (unsigned long)v->end, (unsigned long)prev_end);
		if (v->anon_vma && !list_contains(&v->anon_vma->vmas, &v->anon_node))
			report(ck, "mm %u: VMA %#lx not on its anon_vma", mm->id, (unsigned long)v->start);
		if (v->file && !list_contains(&v->file->i_mmap, &v->file_node))
			report(ck, "mm %u: VMA %#lx not on its file", mm->id, (unsigned long)v->start);
		if (!!(v->flags & VM_SHARED) != !!(v->flags & VM_MAYSHARE) || ((v->flags & VM_SHARED) && !v->file))
			report(ck, "mm %u: VMA %#lx has inconsistent sharing", mm->id, (unsigned long)v->start);
		if ((v->flags & (VM_SHARED | VM_ACCOUNT)) == (VM_SHARED | VM_ACCOUNT) ||
		    ((v->flags & (VM_SHARED | VM_WRITE)) == VM_WRITE && !(v->flags & VM_ACCOUNT)))
			report(ck, "mm %u: VMA %#lx has wrong accounting", mm->id, (unsigned long)v->start);
		prev_end = v->end;
	}
}

static void check_present(struct checker *ck, struct dmm_vma *v, uint64_t addr, pte_t e)
{
	struct dmm_system *sys = ck->sys;
	struct dmm_page *p;

	if (pte_write(e) && !(v->flags & VM_WRITE))
		report(ck, "mm %u %#lx: writable entry in a VMA without VM_WRITE", ck->mm->id, (unsigned long)addr);
	if ((e & _PTE_PROT_BITS) != vma_prot_bits(v))
		report(ck, "mm %u %#lx: protection bits %#lx in a VMA with access %#lx", ck->mm->id,
		       (unsigned long)addr, (unsigned long)(e & _PTE_PROT_BITS), v->flags & VM_ACCESS_FLAGS);
	if (pte_special(e)) {
		if (pte_pfn(e) != DMM_ZERO_PFN || pte_write(e) || !vma_is_anonymous(v))
			report(ck, "mm %u %#lx: bad special entry", ck->mm->id, (unsigned long)addr);
		return;
	}
	p = pfn_to_page(sys, pte_pfn(e));
	if (!p || pte_pfn(e) == DMM_ZERO_PFN) {
		report(ck, "mm %u %#lx: entry maps pfn %#lx without a page", ck->mm->id, (unsigned long)addr,
		       (unsigned long)pte_pfn(e));
		return;
	}
	if (page_is_device_private(p)) {
		report(ck, "mm %u %#lx: a present entry maps device-private pfn %#lx", ck->mm->id,
		       (unsigned long)addr, (unsigned long)pte_pfn(e));
		return;
	}
	ck->maps[slot_of(ck, p)]++;
	ck->rss[mm_counter(v, p)]++;
	if (page_test(p, PG_free) || page_ref_count(p) == 0)
		report(ck, "mm %u %#lx: maps free pfn %#lx", ck->mm->id, (unsigned long)addr, (unsigned long)pte_pfn(e));
	if (page_is_anon(p)) {
		if (pte_write(e) && !page_test(p, PG_anon_exclusive))
			report(ck, "mm %u %#lx: writable entry on a shared anon page", ck->mm->id, (unsigned long)addr);
		if (page_mapping(p) != v->anon_vma || page_index(p) != linear_page_index(v, addr))
			report(ck, "mm %u %#lx: anon page identity does not match its VMA", ck->mm->id,
			       (unsigned long)addr);
	} else if (page_mapping(p) != v->file || page_index(p) != linear_page_index(v, addr) ||
		   !page_test(p, PG_pagecache)) {
		report(ck, "mm %u %#lx: file page identity does not match its VMA", ck->mm->id, (unsigned long)addr);
	}
}

static void check_entry(struct checker *ck, uint64_t addr, pte_t e)
{
	struct dmm_vma *v = vma_lookup(ck->mm, addr);
	struct dmm_page *p;

	if (!v) {
		report(ck, "mm %u %#lx: entry outside any VMA", ck->mm->id, (unsigned long)addr);
		return;
	}
	if (pte_present(e)) {
		check_present(ck, v, addr, e);
		return;
	}
	p = pfn_to_page(ck->sys, entry_pfn(e));
	if (!p || entry_pfn(e) == DMM_ZERO_PFN) {
		report(ck, "mm %u %#lx: leaf entry with a bad pfn", ck->mm->id, (unsigned long)addr);
		return;
	}
	ck->rss[mm_counter(v, p)]++;
	if (is_migration_entry(e)) {
		ck->migs[slot_of(ck, p)]++;
		if (!page_locked(p) || page_ref_count(p) == 0)
			report(ck, "mm %u %#lx: migration entry on an unlocked or free page", ck->mm->id,
			       (unsigned long)addr);
		return;
	}
	ck->maps[slot_of(ck, p)]++;
	if (!page_is_anon(p))
		report(ck, "mm %u %#lx: device entry on a non-anonymous page", ck->mm->id, (unsigned long)addr);
	if (is_device_private_entry(e) && !page_is_device_private(p))
		report(ck, "mm %u %#lx: device-private entry on a frame that is not device-private",
		       ck->mm->id, (unsigned long)addr);
	if ((is_writable_device_private_entry(e) || is_device_exclusive_entry(e)) &&
	    !page_test(p, PG_anon_exclusive))
		report(ck, "mm %u %#lx: writable or exclusive device entry on a shared page", ck->mm->id,
		       (unsigned long)addr);
	if (page_is_anon(p) && (page_mapping(p) != v->anon_vma || page_index(p) != linear_page_index(v, addr)))
		report(ck, "mm %u %#lx: anon page identity does not match its VMA", ck->mm->id, (unsigned long)addr);
}

/* Each entry of a PTE table (pte_entry; the mmap_lock held, no PTL: the
 * system is quiescent). A PMD leaf is reported by check_pgtable and
 * skipped here. */
static int check_pte(_Atomic pte_t *pte, pte_t e, uint64_t addr, struct mm_walk *walk)
{
	(void)pte;
	if (!pte_none(e))
		check_entry(walk->private, addr, e);
	return 0;
}

/*
 * A PMD leaf (large-folios.md §4.2, §4.3, §4.5, §4.6, §4.7): a 2 MiB
 * aligned range inside one VMA, its deposited table all none; the huge
 * zero PMD special, read-only, in an anonymous VMA, counting nothing; a
 * THP PMD maps the head of an order-9 anon folio of the VMA, counts once
 * in the folio's entire mapcount and 512 in rss, and is writable only if
 * the head is exclusive.
 */
static void check_pmd_leaf(struct checker *ck, struct dmm_pte_table *t, pte_t pmd, uint64_t addr)
{
	struct dmm_vma *v = vma_lookup(ck->mm, addr);
	uint64_t pfn = entry_pfn(pmd);
	struct dmm_page *p;

	if (!v || (addr & ~HPAGE_PMD_MASK) || addr < v->start || v->end - addr < HPAGE_PMD_SIZE) {
		report(ck, "mm %u %#lx: PMD leaf not inside one VMA", ck->mm->id, (unsigned long)addr);
		return;
	}
	for (unsigned int i = 0; i < PTRS_PER_TABLE; i++)
		if (!pte_none(pte_get(&t->ent[i]))) {
			report(ck, "mm %u %#lx: PMD leaf over a table with entries", ck->mm->id, (unsigned long)addr);
			break;
		}
	if (!pte_present(pmd)) {
		report(ck, "mm %u %#lx: non-present PMD leaf %#llx", ck->mm->id, (unsigned long)addr,
		       (unsigned long long)pmd);
		return;
	}
	if ((pmd & _PTE_PROT_BITS) != vma_prot_bits(v) || (pte_write(pmd) && !(v->flags & VM_WRITE)))
		report(ck, "mm %u %#lx: PMD protection does not match the VMA", ck->mm->id, (unsigned long)addr);
	if (pte_special(pmd)) {
		if (!is_huge_zero_pmd(ck->sys, pmd) || pte_write(pmd) || !vma_is_anonymous(v))
			report(ck, "mm %u %#lx: bad huge zero PMD", ck->mm->id, (unsigned long)addr);
		if (!atomic_load(&ck->mm->huge_zero))
			report(ck, "mm %u %#lx: huge zero PMD but the mm does not hold it", ck->mm->id,
			       (unsigned long)addr);
		return;
	}
	p = pfn_to_page(ck->sys, pfn);
	if (!p || page_is_zone_device(p) || page_is_tail(p) || folio_order(p) != HPAGE_PMD_ORDER ||
	    !page_is_anon(p) || page_ref_count(p) == 0) {
		report(ck, "mm %u %#lx: PMD maps pfn %#lx, not the head of a live order-9 anon folio", ck->mm->id,
		       (unsigned long)addr, (unsigned long)pfn);
		return;
	}
	ck->pmds[slot_of(ck, p)]++;
	ck->rss[DMM_MM_ANONPAGES] += HPAGE_PMD_NR;
	if (page_mapping(p) != v->anon_vma || page_index(p) != linear_page_index(v, addr))
		report(ck, "mm %u %#lx: THP identity does not match its VMA", ck->mm->id, (unsigned long)addr);
	if (pte_write(pmd) && (!page_test(p, PG_anon_exclusive) || folio_mapcount(p) != 1 ||
			       folio_entire_mapcount(p) != 1))
		report(ck, "mm %u %#lx: writable PMD on a shared or non-exclusive THP", ck->mm->id,
		       (unsigned long)addr);
}

static int check_pmd(struct dmm_pte_table *t, pte_t pmd, uint64_t addr, uint64_t end, struct mm_walk *walk)
{
	(void)end;
	if (pmd_is_leaf(pmd)) {
		check_pmd_leaf(walk->private, t, pmd, addr);
		walk->action = ACTION_CONTINUE;
	}
	return 0;
}

static const struct mm_walk_ops check_walk_ops = { .pmd_entry = check_pmd, .pte_entry = check_pte };

/* Invariant 10: seq even and no invalidation active while quiescent;
 * every subscription's seq odd; the subscription tree well formed and
 * counted by nsubs. */
struct check_sub_arg {
	struct checker *ck;
	struct dmm_mm *mm;
};

static int check_sub(struct itree_node *n, void *arg)
{
	struct check_sub_arg *a = arg;
	struct dmm_mmu_interval_notifier *sub =
		container_of((uint64_t *)(void *)n, struct dmm_mmu_interval_notifier, _link[0]);

	if (!(__atomic_load_n(&sub->invalidate_seq, __ATOMIC_ACQUIRE) & 1) || sub->mm != a->mm)
		report(a->ck, "mm %u: subscription [%#lx, %#lx] has an even seq", a->mm->id,
		       (unsigned long)sub->start, (unsigned long)sub->last);
	if (n->start != sub->start || n->last != sub->last)
		report(a->ck, "mm %u: subscription [%#lx, %#lx] filed as [%#lx, %#lx]", a->mm->id,
		       (unsigned long)sub->start, (unsigned long)sub->last, (unsigned long)n->start,
		       (unsigned long)n->last);
	return 0;
}

static void check_notifiers(struct checker *ck, struct dmm_mm *mm)
{
	struct dmm_notifier_state *st = &mm->notif;
	struct check_sub_arg arg = {ck, mm};
	long n;

	pthread_mutex_lock(&st->lock);
	if ((atomic_load(&st->seq) & 1) || atomic_load(&st->active) || !list_empty(&st->deferred))
		report(ck, "mm %u: notifier seq %lu, %lu invalidations active while quiescent", mm->id,
		       (unsigned long)atomic_load(&st->seq), (unsigned long)atomic_load(&st->active));
	n = itree_validate(&st->subs);
	if (n < 0 || (unsigned long)n != atomic_load(&st->nsubs))
		report(ck, "mm %u: subscription tree malformed (%ld nodes, nsubs %lu)", mm->id, n,
		       (unsigned long)atomic_load(&st->nsubs));
	itree_for_each(&st->subs, 0, UINT64_MAX, check_sub, &arg);
	if (atomic_load(&st->starts) != atomic_load(&st->ends))
		report(ck, "mm %u: %lu invalidation starts but %lu ends", mm->id,
		       (unsigned long)atomic_load(&st->starts), (unsigned long)atomic_load(&st->ends));
	pthread_mutex_unlock(&st->lock);
}

/* A page-table page must translate part of some VMA. A NONE PMD slot
 * maps nothing: its entries are all none (a leaf is check_pmd_leaf's). */
static void check_pgtable(void *arg, void *table, uint64_t start, uint64_t end, int level)
{
	struct checker *ck = arg;
	struct dmm_vma *v = find_vma(ck->mm, start);

	if (!v || v->start >= end)
		report(ck, "mm %u: level-%d page table over [%#lx, %#lx) outside every VMA", ck->mm->id, level,
		       (unsigned long)start, (unsigned long)end);
	if (level == 0) {
		struct dmm_pte_table *t = table;
		pte_t pmd = pmd_get(t);

		if (pmd_none(pmd))
			for (unsigned int i = 0; i < PTRS_PER_TABLE; i++)
				if (!pte_none(pte_get(&t->ent[i]))) {
					report(ck, "mm %u %#lx: entry %#llx under a NONE PMD slot", ck->mm->id,
					       (unsigned long)(start + i * PAGE_SIZE),
					       (unsigned long long)pte_get(&t->ent[i]));
					break;
				}
	}
}

static void check_mm(struct checker *ck, struct dmm_mm *mm)
{
	unsigned long tables;

	ck->mm = mm;
	memset(ck->rss, 0, sizeof(ck->rss));
	check_vmas(ck, mm);
	check_notifiers(ck, mm);
	tables = walk_pgtables(mm, check_pgtable, ck);
	if ((long)tables != atomic_load(&mm->nr_pgtables))
		report(ck, "mm %u: %lu page tables, the count says %ld", mm->id, tables,
		       atomic_load(&mm->nr_pgtables));
	walk_page_range(mm, 0, DMM_TASK_SIZE, &check_walk_ops, ck);
	for (int t = 0; t < DMM_NR_MM_COUNTERS; t++)
		if (ck->rss[t] != mm_rss_sum(mm, t))
			report(ck, "mm %u: rss[%d] is %ld, entries say %ld", mm->id, t, mm_rss_sum(mm, t),
			       ck->rss[t]);
}

/*
 * A large folio (large-folios.md §4.1, §4.3 for PTEs, §4.4, §4.6 for PTEs):
 * head @f at @pfn, counting slots from @slot, inside a run of @room frames
 * that may belong to it. Every tail points at the head and holds no
 * reference, pin or folio flag; each page's mapcount is the PTEs that map
 * it; the entire mapcount is the PMD leaves mapping it; the folio
 * mapcount is all of them (a PMD counting 1); nr_pages_mapped is
 * the pages mapped by a PTE; the refcount covers mappings and pins (exact
 * for a large folio); a partially mapped anon folio is flagged and on the
 * deferred-split queue, and the reverse. Returns false when the shape is broken (the caller
 * then checks nothing more).
 */
static bool check_large_folio(struct checker *ck, struct dmm_page *f, uint64_t pfn, uint64_t slot, uint64_t room)
{
	unsigned int order = folio_order(f);
	uint64_t n = 1ull << order, ptes = 0, mapped = 0;
	uint32_t ref = folio_ref_count(f), pins = folio_pincount(f), fl = page_flags(f);
	int32_t entire = folio_entire_mapcount(f), large = folio_mapcount(f);

	if (order < FOLIO_MIN_LARGE_ORDER || order > FOLIO_MAX_ORDER || (pfn & (n - 1)) || n > room) {
		report(ck, "pfn %#lx: a large folio of order %u does not fit here", (unsigned long)pfn, order);
		return false;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct dmm_page *t = &f[i];
		uint32_t tfl = page_flags(t);
		int32_t m = atomic_load(&t->mapcount);

		if (i && (atomic_load(&t->compound_head) != ((uintptr_t)f | 1) || atomic_load(&t->refcount) ||
			  atomic_load(&t->pincount) || (tfl & ~(PG_PER_PAGE | PG_OWNER_MASK)) || (tfl & PG_free))) {
			report(ck, "pfn %#lx: page %lu of the large folio is not a clean tail (flags %#x)",
			       (unsigned long)pfn, (unsigned long)i, tfl);
			return false;
		}
		if (m < 0 || (uint32_t)m != ck->maps[slot + i])
			report(ck, "pfn %#lx: page mapcount %d but %u entries map it", (unsigned long)(pfn + i), m,
			       ck->maps[slot + i]);
		if ((tfl & PG_anon_exclusive) && m + entire > 1)
			report(ck, "pfn %#lx: anon-exclusive but mapped %d times", (unsigned long)(pfn + i), m + entire);
		ptes += (uint64_t)DMM_MAX(m, 0);
		mapped += m > 0;
	}
	if (entire < 0 || (uint32_t)entire != ck->pmds[slot])
		report(ck, "pfn %#lx: entire mapcount %d but %u PMD entries map it", (unsigned long)pfn, entire,
		       ck->pmds[slot]);
	if (entire > 1 && (fl & PG_anon_exclusive))
		report(ck, "pfn %#lx: PMD-mapped %d times but exclusive", (unsigned long)pfn, entire);
	if (large < 0 || (uint64_t)large != ptes + (uint64_t)entire)
		report(ck, "pfn %#lx: folio mapcount %d but %lu entries map the folio", (unsigned long)pfn, large,
		       (unsigned long)(ptes + (uint64_t)entire));
	if ((uint64_t)folio_nr_pages_mapped(f) != mapped)
		report(ck, "pfn %#lx: %d pages mapped by PTEs, the folio says %d", (unsigned long)pfn, (int)mapped,
		       folio_nr_pages_mapped(f));
	if ((uint64_t)ref < (uint64_t)DMM_MAX(large, 0) + pins + !!(fl & PG_pagecache))
		report(ck, "pfn %#lx: folio refcount %u below mapcount %d + pins %u", (unsigned long)pfn, ref, large,
		       pins);
	if ((fl & PG_partially_mapped) && entire)
		report(ck, "pfn %#lx: partially mapped but PMD-mapped", (unsigned long)pfn);
	if ((fl & PG_partially_mapped) && list_empty(&f[2].deferred_list))
		report(ck, "pfn %#lx: partially mapped but not queued for deferred split", (unsigned long)pfn);
	/* The reverse (spec §1.4): an anon folio, not device-private, with
	 * some pages but not all mapped by PTEs and no PMD mapping the whole
	 * was flagged and queued when its mappings went, and nothing takes it
	 * off the queue while it stays so (a failed split leaves it queued). */
	if ((fl & PG_anon) && !page_is_device_private(f) && mapped > 0 && mapped < n && !entire &&
	    (!(fl & PG_partially_mapped) || list_empty(&f[2].deferred_list)))
		report(ck, "pfn %#lx: %lu of %lu pages mapped but not flagged and queued for deferred split",
		       (unsigned long)pfn, (unsigned long)mapped, (unsigned long)n);
	return true;
}

static void check_frame(struct checker *ck, uint64_t pfn)
{
	struct dmm_page *p = &ck->sys->frames[pfn];
	uint32_t ref = page_ref_count(p), pins = atomic_load(&p->pincount), fl = page_flags(p);
	int32_t map = page_mapcount(p);
	uint64_t need = (uint64_t)map + (uint64_t)pins * GUP_PIN_COUNTING_BIAS + !!(fl & PG_pagecache);
	uint8_t times = ck->listed[pfn] & LISTED_COUNT;

	if (times > 1)
		report(ck, "pfn %#lx: on the free lists %u times", (unsigned long)pfn, times);
	if (times) {
		/* A fresh (never used) frame is pristine; a freed one is marked. */
		if ((ck->listed[pfn] & LISTED_FRESH) ? fl != 0 : !(fl & PG_free))
			report(ck, "pfn %#lx: free with flags %#x", (unsigned long)pfn, fl);
		if (atomic_load(&p->refcount) || atomic_load(&p->mapcount) || pins || ck->maps[pfn] ||
		    ck->migs[pfn] || atomic_load(&p->compound_head))
			report(ck, "pfn %#lx: free but ref %u map %d pins %u or in a folio", (unsigned long)pfn,
			       atomic_load(&p->refcount), atomic_load(&p->mapcount), pins);
		return;
	}
	if (page_is_tail(p)) {
		/* Checked with its head, which must be a head that covers it. */
		struct dmm_page *f = page_folio(p);
		uint64_t hp = (uint64_t)(f - ck->sys->frames);

		if (f < ck->sys->frames || hp >= pfn || page_is_tail(f) || !folio_test_large(f) ||
		    pfn - hp >= folio_nr_pages(f))
			report(ck, "pfn %#lx: a tail outside its folio", (unsigned long)pfn);
		return;
	}
	if (folio_test_large(p)) {
		uint64_t migs = 0;

		if (!check_large_folio(ck, p, pfn, pfn, ck->sys->nr_frames + 1 - pfn))
			return;
		for (uint64_t i = 0; i < folio_nr_pages(p); i++)
			migs += ck->migs[pfn + i];
		if (ref == 0 || (fl & PG_free))
			report(ck, "pfn %#lx: large folio neither free nor in use (ref %u, flags %#x)",
			       (unsigned long)pfn, ref, fl);
		if ((fl & PG_locked) && !migs)
			report(ck, "pfn %#lx: locked while the system is quiescent", (unsigned long)pfn);
		ck->pins += pins;
		return;
	}
	ck->pins += pins;
	if (ref == 0 || (fl & PG_free))
		report(ck, "pfn %#lx: neither free nor in use (ref %u, flags %#x)", (unsigned long)pfn, ref, fl);
	if (map < 0 || (uint32_t)map != ck->maps[pfn])
		report(ck, "pfn %#lx: mapcount %d but %u entries map it", (unsigned long)pfn, map, ck->maps[pfn]);
	if (ref < need)
		report(ck, "pfn %#lx: refcount %u below %lu (maps %d, pins %u)", (unsigned long)pfn, ref,
		       (unsigned long)need, map, pins);
	if ((fl & PG_anon_exclusive) && map > 1)
		report(ck, "pfn %#lx: anon-exclusive but mapped %d times", (unsigned long)pfn, map);
	if ((fl & PG_anon) && pins && map && !(fl & PG_anon_exclusive))
		report(ck, "pfn %#lx: pinned anon page is not exclusive", (unsigned long)pfn);
	if ((fl & PG_locked) && !ck->migs[pfn])
		report(ck, "pfn %#lx: locked while the system is quiescent", (unsigned long)pfn);
}

static void check_device_frame(struct checker *ck, struct dmm_pgmap *pg, uint64_t i, uint64_t *allocated)
{
	struct dmm_page *p = &pg->pages[i];
	uint64_t pfn = pg->pfn_start + i, slot = pg->check_base + i;
	uint32_t ref = atomic_load(&p->refcount), pins = atomic_load(&p->pincount), fl = page_flags(p);
	int32_t map = atomic_load(&p->mapcount);

	if (!(fl & PG_zone_device) || p->pgmap != pg)
		report(ck, "device pfn %#lx: lost its pgmap", (unsigned long)pfn);
	if (page_is_tail(p)) {
		/* Of an allocated large folio (checked with its head), or stale
		 * compound data of a free one (large-folios.md §1.6). */
		struct dmm_page *f = page_folio(p);

		if (f < pg->pages || f >= p || (uint64_t)(p - f) >= folio_nr_pages(f))
			report(ck, "device pfn %#lx: a tail outside its folio", (unsigned long)pfn);
		else if (folio_ref_count(f))
			(*allocated)++;
		else if (map || pins || ck->maps[slot] || ck->migs[slot])
			report(ck, "device pfn %#lx: a free folio's page is mapped", (unsigned long)pfn);
		return;
	}
	ck->pins += pins;
	if (ref == 0) {
		if (map || pins || ck->maps[slot] || ck->migs[slot] || p->mapping || (fl & PG_locked))
			report(ck, "device pfn %#lx: free but mapped, pinned, locked or with identity",
			       (unsigned long)pfn);
		return;
	}
	(*allocated)++;
	if (folio_test_large(p)) {
		if (check_large_folio(ck, p, pfn, slot, pg->nr_pages - i)) {
			if (pg->type == DMM_MEMORY_DEVICE_PRIVATE && pins)
				report(ck, "device pfn %#lx: a device-private folio is pinned", (unsigned long)pfn);
			if (folio_order(p) != FOLIO_MAX_ORDER)
				report(ck, "device pfn %#lx: a device folio of order %u", (unsigned long)pfn,
				       folio_order(p));
		}
		return;
	}
	if (map < 0 || (uint32_t)map != ck->maps[slot])
		report(ck, "device pfn %#lx: mapcount %d but %u entries map it", (unsigned long)pfn, map,
		       ck->maps[slot]);
	if ((uint64_t)ref < (uint64_t)map + (uint64_t)pins * GUP_PIN_COUNTING_BIAS)
		report(ck, "device pfn %#lx: refcount %u below mapcount %d + pins %u", (unsigned long)pfn, ref,
		       map, pins);
	if (pg->type == DMM_MEMORY_DEVICE_PRIVATE && pins)
		report(ck, "device pfn %#lx: a device-private page is pinned", (unsigned long)pfn);
	if (fl & PG_lru)
		report(ck, "device pfn %#lx: on the LRU", (unsigned long)pfn);
	if ((fl & PG_anon_exclusive) && map > 1)
		report(ck, "device pfn %#lx: anon-exclusive but mapped %d times", (unsigned long)pfn, map);
	if ((fl & PG_locked) && !ck->migs[slot])
		report(ck, "device pfn %#lx: locked while the system is quiescent", (unsigned long)pfn);
}

static void check_pgmaps(struct checker *ck)
{
	struct dmm_list *pos;

	list_for_each(pos, &ck->sys->pgmaps) {
		struct dmm_pgmap *pg = container_of(pos, struct dmm_pgmap, node);
		uint64_t allocated = 0;
		long ref = atomic_load(&pg->ref) - atomic_load(&pg->transient);

		for (uint64_t i = 0; i < pg->nr_pages; i++)
			check_device_frame(ck, pg, i, &allocated);
		if (ref != (long)allocated)
			report(ck, "pgmap %#lx: %ld page references for %lu allocated pages",
			       (unsigned long)pg->pfn_start, ref, (unsigned long)allocated);
	}
}

/* Give every pgmap its counting slots; pgmap_lock held. */
static uint64_t assign_slots(struct dmm_system *sys)
{
	uint64_t n = sys->nr_frames + 1;
	struct dmm_list *pos;

	list_for_each(pos, &sys->pgmaps) {
		struct dmm_pgmap *pg = container_of(pos, struct dmm_pgmap, node);

		pg->check_base = n;
		n += pg->nr_pages;
	}
	return n;
}

static void mark_listed(uint64_t pfn, bool fresh, void *arg)
{
	struct checker *ck = arg;

	if (pfn == 0 || pfn > ck->sys->nr_frames)
		report(ck, "free list holds bad pfn %#lx", (unsigned long)pfn);
	else if ((ck->listed[pfn] & LISTED_COUNT) < LISTED_COUNT)
		ck->listed[pfn] = (uint8_t)((ck->listed[pfn] + 1) | (fresh ? LISTED_FRESH : 0));
}

static void check_frames(struct checker *ck)
{
	struct dmm_system *sys = ck->sys;
	struct dmm_page *zero = &sys->frames[0];
	uint64_t nfree = 0, walked, counted;

	frame_for_each_free(sys, mark_listed, ck);
	for (uint64_t pfn = 1; pfn <= sys->nr_frames; pfn++) {
		check_frame(ck, pfn);
		nfree += ck->listed[pfn] != 0;
	}
	if (nfree != dmm_system_nr_free(sys))
		report(ck, "allocator: %lu frames free on the lists, counter says %lu", (unsigned long)nfree,
		       (unsigned long)dmm_system_nr_free(sys));
	if (frame_nr_listed(sys) != nfree)
		report(ck, "allocator: %lu frames free on the lists, their counts say %lu", (unsigned long)nfree,
		       (unsigned long)frame_nr_listed(sys));
	frame_large_listed(sys, &walked, &counted);
	if (walked != counted)
		report(ck, "allocator: %lu frames in large free blocks, their count says %lu", (unsigned long)walked,
		       (unsigned long)counted);
	if (page_ref_count(zero) || page_mapcount(zero) || page_flags(zero) != (PG_reserved | PG_uptodate))
		report(ck, "the zero page was counted or changed");
	if (ck->maps[0])
		report(ck, "the zero page appears as a counted mapping");
}

/* §4.10: every queued folio is a live large anon folio, not device-private. */
static void check_deferred_split(struct checker *ck)
{
	struct dmm_deferred_split *ds = &ck->sys->deferred_split;
	struct dmm_list *pos;
	long n = 0;

	pthread_mutex_lock(&ds->lock);
	list_for_each(pos, &ds->queue) {
		struct dmm_page *f = container_of(pos, struct dmm_page, deferred_list) - 2;

		if (n++ > ds->len)
			break;
		if (page_is_tail(f) || folio_order(f) < FOLIO_MIN_LARGE_ORDER || page_is_tail(&f[1]) == false ||
		    page_folio(&f[2]) != f || !page_is_anon(f) || page_is_device_private(f) || !folio_ref_count(f))
			report(ck, "deferred split: a queued folio that is not a live large anon folio");
	}
	if (n != ds->len)
		report(ck, "deferred split: %ld folios queued, the count says %ld", n, ds->len);
	pthread_mutex_unlock(&ds->lock);
}

static void check_files(struct checker *ck)
{
	struct dmm_list *pos;

	list_for_each(pos, &ck->sys->files) {
		struct dmm_file *f = container_of(pos, struct dmm_file, node);

		pthread_mutex_lock(&f->lock);
		for (uint64_t i = 0; i < f->npages; i++) {
			struct dmm_page *p = f->pages[i];

			if (p && (p->mapping != f || p->index != i || !page_test(p, PG_pagecache)))
				report(ck, "file page %lu: wrong identity", (unsigned long)i);
		}
		pthread_mutex_unlock(&f->lock);
	}
}

int dmm_check(struct dmm_system *sys, char *buf, size_t size)
{
	struct checker ck = { .sys = sys, .buf = size ? buf : NULL, .size = size };
	struct dmm_list *pos;
	long huge_zero_mms = 0;

	if (!sys)
		return -EINVAL;
	if (ck.buf)
		ck.buf[0] = '\0';
	/* pgmap_lock is never held while an mmap_lock is taken (drivers
	 * register device memory under mmap_lock): the slots are assigned
	 * first, the pgmaps checked after the address spaces. */
	pthread_mutex_lock(&sys->mm_list_lock);
	pthread_mutex_lock(&sys->pgmap_lock);
	ck.nslots = assign_slots(sys);
	pthread_mutex_unlock(&sys->pgmap_lock);
	ck.maps = calloc(ck.nslots, sizeof(*ck.maps));
	ck.migs = calloc(ck.nslots, sizeof(*ck.migs));
	ck.pmds = calloc(ck.nslots, sizeof(*ck.pmds));
	ck.listed = calloc(sys->nr_frames + 1, 1);
	if (!ck.maps || !ck.migs || !ck.pmds || !ck.listed) {
		free(ck.maps);
		free(ck.pmds);
		free(ck.migs);
		free(ck.listed);
		pthread_mutex_unlock(&sys->mm_list_lock);
		return -ENOMEM;
	}
	list_for_each(pos, &sys->mms) {
		struct dmm_mm *mm = container_of(pos, struct dmm_mm, node);

		mmap_read_lock(mm);
		check_mm(&ck, mm);
		mmap_read_unlock(mm);
		huge_zero_mms += atomic_load(&mm->huge_zero);
	}
	/* §1.3: each mm that mapped the huge zero folio holds it once. */
	if (huge_zero_mms != atomic_load(&sys->huge_zero_mms))
		report(&ck, "huge zero folio: %ld mms hold it, the count says %ld", huge_zero_mms,
		       atomic_load(&sys->huge_zero_mms));
	pthread_mutex_lock(&sys->file_list_lock);
	check_files(&ck);
	pthread_mutex_unlock(&sys->file_list_lock);
	check_frames(&ck);
	check_deferred_split(&ck);
	pthread_mutex_lock(&sys->pgmap_lock);
	check_pgmaps(&ck);
	{
		struct dmm_stats st;

		dmm_stats_get(sys, &st);
		if (st.pin_pages - st.unpin_pages != ck.pins)
			report(&ck, "pins: %lu taken, %lu released, but %lu held", (unsigned long)st.pin_pages,
			       (unsigned long)st.unpin_pages, (unsigned long)ck.pins);
	}
	pthread_mutex_unlock(&sys->pgmap_lock);
	pthread_mutex_unlock(&sys->mm_list_lock);
	if (ck.errors > MAX_REPORTS) {
		unsigned int more = ck.errors - MAX_REPORTS;

		ck.errors = 0; /* let the summary line through */
		report(&ck, "... and %u more", more);
		ck.errors = MAX_REPORTS + more;
	}
	free(ck.maps);
	free(ck.migs);
	free(ck.pmds);
	free(ck.listed);
	return ck.errors ? -EUCLEAN : 0;
}
