/* SPDX-License-Identifier: MIT */
/*
 * The mirror's data commands: read, write, snapshot, exclusive,
 * check-exclusive and atomic-add, and the fault pass they share — the
 * collision-retry protocol of hmm_range_fault every driver must follow:
 *
 *   seq = read_begin(notifier)
 *   mmap_read_lock; r = hmm_range_fault(range); mmap_read_unlock
 *   r == -EBUSY: start again (bounded by a timeout)
 *   take the driver lock; read_retry(seq)? drop it, start again
 *   program the device page table; drop the driver lock
 */
#include "internal.h"

#include <time.h>

bool range_ok(uint64_t addr, uint64_t npages)
{
	if (npages == 0 || (addr & (PAGE - 1)) || npages > (DMM_TASK_SIZE >> DMM_PAGE_SHIFT))
		return false;
	return addr < DMM_TASK_SIZE && npages * PAGE <= DMM_TASK_SIZE - addr;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Enter the frames hmm returned (m->lock held). Returns the address of the
 * first page that came back without the WRITE it needed, or 0. The
 * fork-friendly policy (cow=device) maps what a read fault brought in
 * read-only, so that a fork's write-protect costs the device nothing; a
 * later device write upgrades through a write fault. */
static uint64_t program_window(struct mirror *m, struct dmm_hmm_range *range, bool write)
{
	bool read_only = !write && m->dev->cow == MIRROR_COW_DEVICE;
	uint64_t bad = 0;

	for (uint64_t a = range->start; a < range->end; a += PAGE) {
		uint64_t w = range->hmm_pfns[(a - range->start) / PAGE];
		bool writable = (w & DMM_HMM_PFN_WRITE) && !read_only;

		if (!(w & DMM_HMM_PFN_VALID))
			continue;
		if (write && !writable && !bad)
			bad = a; /* an owned read-only device-private page (§5.3 item 3) */
		ptab_set(m->pt, a, dmm_hmm_pfn_to_pfn(w), writable ? MIRROR_WRITE : MIRROR_READ);
	}
	return bad;
}

/*
 * The collision-retry loop itself: returns 0 with m->lock held and the
 * range's pfns valid for programming, or -errno (-EBUSY when the retries
 * ran out of time).
 */
static int hmm_window_locked(struct mirror *m, struct dmm_hmm_range *range)
{
	uint64_t deadline = now_ms() + MIRROR_FAULT_TIMEOUT_MS;
	int r;

	for (;;) {
		if (now_ms() > deadline)
			return -EBUSY;
		range->notifier_seq = dmm_mmu_interval_read_begin(&m->notifier);
		dmm_mmap_read_lock(m->mm);
		r = dmm_hmm_range_fault(range);
		dmm_mmap_read_unlock(m->mm);
		if (r == -EBUSY)
			continue;
		if (r)
			return r;
		pthread_mutex_lock(&m->lock);
		if (!dmm_mmu_interval_read_retry(&m->notifier, range->notifier_seq))
			return 0;
		pthread_mutex_unlock(&m->lock);
	}
}

/* One window of at most MIRROR_FAULT_WINDOW pages. Returns 0, -errno, or
 * MIGRATED_OWN: a write found one of our own read-only device pages, which
 * was migrated to system memory (itself a fault pass); fault again. */
#define MIGRATED_OWN 1
static int fault_window(struct mirror *m, uint64_t start, uint64_t end, bool write)
{
	uint64_t pfns[MIRROR_FAULT_WINDOW];
	struct dmm_hmm_range range = {
		.notifier = &m->notifier,
		.start = start,
		.end = end,
		.hmm_pfns = pfns,
		.default_flags = DMM_HMM_PFN_REQ_FAULT | (write ? DMM_HMM_PFN_REQ_WRITE : 0),
		.dev_private_owner = m->dev,
	};
	uint64_t bad;
	int r = hmm_window_locked(m, &range);

	if (r)
		return r;
	bad = program_window(m, &range, write);
	pthread_mutex_unlock(&m->lock);
	if (!bad)
		return 0;
	/* Writing to our own read-only device page: hmm will not fault it
	 * (§5.3 item 3), so move it to system memory and let the caller
	 * fault again instead of failing. */
	r = migrate_range_to_sys(m, bad, bad + PAGE, NULL);
	return r ? r : MIGRATED_OWN;
}

/*
 * Enter the pages of [start, end) that are on this device now (a snapshot:
 * nothing is faulted). Pages already on the device belong in the table
 * even after an invalidation erased them (a fork's write-protect, a closed
 * and reopened mirror): migrate-to-dev counts them.
 */
int mirror_map_own_range(struct mirror *m, uint64_t start, uint64_t end)
{
	for (uint64_t a = start; a < end; a += MIRROR_FAULT_WINDOW * PAGE) {
		uint64_t e = a + MIRROR_FAULT_WINDOW * PAGE < end ? a + MIRROR_FAULT_WINDOW * PAGE : end;
		uint64_t pfns[MIRROR_FAULT_WINDOW] = { 0 };
		struct dmm_hmm_range range = {
			.notifier = &m->notifier, .start = a, .end = e, .hmm_pfns = pfns,
			.dev_private_owner = m->dev,
		};
		int r = hmm_window_locked(m, &range);

		if (r)
			return r;
		for (uint64_t p = a; p < e; p += PAGE) {
			uint64_t w = pfns[(p - a) / PAGE];
			enum mirror_tag tag;
			uint64_t old;

			if (!(w & DMM_HMM_PFN_VALID) || !pfn_is_own(m->dev, dmm_hmm_pfn_to_pfn(w)))
				continue;
			if (ptab_get(m->pt, p, &old, &tag) && old == dmm_hmm_pfn_to_pfn(w))
				continue; /* already there, maybe with a better tag */
			ptab_set(m->pt, p, dmm_hmm_pfn_to_pfn(w), (w & DMM_HMM_PFN_WRITE) ? MIRROR_WRITE : MIRROR_READ);
		}
		pthread_mutex_unlock(&m->lock);
	}
	return 0;
}

int mirror_fault_range(struct mirror *m, uint64_t start, uint64_t end, bool write)
{
	for (uint64_t a = start; a < end; a += MIRROR_FAULT_WINDOW * PAGE) {
		uint64_t e = a + MIRROR_FAULT_WINDOW * PAGE < end ? a + MIRROR_FAULT_WINDOW * PAGE : end;
		int r = fault_window(m, a, e, write);

		if (r)
			return r; /* an error, or MIGRATED_OWN: the pass ends here */
	}
	return 0;
}

/* Copy between the table's frames and buf from *addr on, under m->lock,
 * until a page has no (suitable) entry. */
static void copy_mapped(struct mirror *m, uint64_t start, uint64_t *addr, uint64_t end, uint8_t *buf,
			bool write)
{
	pthread_mutex_lock(&m->lock);
	for (; *addr < end; *addr += PAGE) {
		uint8_t *mem, *b = buf + (*addr - start);
		enum mirror_tag tag;
		uint64_t pfn;

		if (!ptab_get(m->pt, *addr, &pfn, &tag) || (write && tag == MIRROR_READ))
			break;
		if (!buf)
			continue; /* the access without its data */
		mem = frame_data(m->dev, pfn);
		if (write)
			memcpy(mem, b, PAGE);
		else
			memcpy(b, mem, PAGE);
	}
	pthread_mutex_unlock(&m->lock);
}

/* read / write: copy what is mapped, fault the rest, repeat. */
static int device_access(struct mirror *m, uint64_t start, uint64_t npages, uint8_t *buf, bool write,
			 struct mirror_result *res)
{
	uint64_t end = start + npages * PAGE, addr = start;

	while (addr < end) {
		int r;

		copy_mapped(m, start, &addr, end, buf, write);
		if (addr >= end)
			break;
		res->faults++;
		r = mirror_fault_range(m, addr, end, write);
		if (r == MIGRATED_OWN)
			res->faults++; /* the migration of our own page counts too */
		else if (r)
			return r;
	}
	res->cpages = npages;
	return 0;
}

int mirror_read(struct mirror *m, uint64_t addr, uint64_t npages, void *buf, struct mirror_result *res)
{
	struct mirror_result tmp = { 0 };
	uint8_t *bounce;
	int r;

	*res = tmp;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	if (!buf)
		return device_access(m, addr, npages, NULL, false, res);
	if (!m->dev->contents)
		return -EOPNOTSUPP;
	bounce = malloc(npages * PAGE);
	if (!bounce)
		return -ENOMEM;
	r = device_access(m, addr, npages, bounce, false, &tmp);
	*res = tmp;
	if (!r)
		memcpy(buf, bounce, npages * PAGE);
	free(bounce);
	return r;
}

int mirror_write(struct mirror *m, uint64_t addr, uint64_t npages, const void *buf,
		 struct mirror_result *res)
{
	struct mirror_result tmp = { 0 };
	int r;

	*res = tmp;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	if (buf && !m->dev->contents)
		return -EOPNOTSUPP;
	r = device_access(m, addr, npages, (uint8_t *)buf, true, &tmp);
	*res = tmp;
	return r;
}

/* ------------------------------------------------------------------------ */
/* snapshot                                                                  */

static bool snap_invalidate(struct dmm_mmu_interval_notifier *sub, const struct dmm_mmu_notifier_range *r,
			    unsigned long cur_seq)
{
	(void)r;
	dmm_mmu_interval_set_seq(sub, cur_seq); /* nothing cached: just note it */
	return true;
}

static const struct dmm_mmu_interval_notifier_ops snap_ops = { .invalidate = snap_invalidate };

static uint8_t snap_byte(struct mirror_device *dev, uint64_t w)
{
	uint64_t pfn = dmm_hmm_pfn_to_pfn(w);
	struct dmm_pgmap *pg;
	uint8_t b;

	if (w & DMM_HMM_PFN_ERROR)
		return MIRROR_SNAP_ERROR;
	if (!(w & DMM_HMM_PFN_VALID))
		return 0;
	pg = dmm_page_pgmap(dev->sys, pfn);
	if (pfn == DMM_ZERO_PFN)
		b = MIRROR_SNAP_ZERO;
	else if (!pg)
		b = 0;
	else if (dmm_pgmap_type(pg) == DMM_MEMORY_DEVICE_PRIVATE)
		b = dmm_pgmap_owner(pg) == dev ? MIRROR_SNAP_OWN_PRIVATE : MIRROR_SNAP_OTHER_PRIVATE;
	else
		b = dmm_pgmap_owner(pg) == dev ? MIRROR_SNAP_OWN_COHERENT : MIRROR_SNAP_OTHER_COHERENT;
	b |= (w & DMM_HMM_PFN_WRITE) ? MIRROR_SNAP_WRITE : MIRROR_SNAP_READ;
	if (dmm_hmm_pfn_to_map_order(w) >= 18)
		b |= MIRROR_SNAP_PUD;
	else if (dmm_hmm_pfn_to_map_order(w) >= 9)
		b |= MIRROR_SNAP_PMD;
	return b;
}

/* One window with a temporary notifier; never faults. */
static int snapshot_window(struct mirror *m, uint64_t start, uint64_t end, uint8_t *bytes)
{
	uint64_t pfns[MIRROR_FAULT_WINDOW] = { 0 };
	struct dmm_mmu_interval_notifier sub;
	struct dmm_hmm_range range = {
		.notifier = &sub, .start = start, .end = end, .hmm_pfns = pfns,
		.dev_private_owner = m->dev,
	};
	uint64_t deadline = now_ms() + MIRROR_FAULT_TIMEOUT_MS;
	int r = dmm_mmu_interval_notifier_insert(&sub, m->mm, start, end - start, &snap_ops);

	if (r)
		return r;
	do {
		r = now_ms() > deadline ? -ETIMEDOUT : 0;
		if (r)
			break;
		range.notifier_seq = dmm_mmu_interval_read_begin(&sub);
		dmm_mmap_read_lock(m->mm);
		r = dmm_hmm_range_fault(&range);
		dmm_mmap_read_unlock(m->mm);
	} while (r == -EBUSY);
	dmm_mmu_interval_notifier_remove(&sub);
	if (r)
		return r == -ETIMEDOUT ? -EBUSY : r;
	for (uint64_t a = start; a < end; a += PAGE)
		bytes[(a - start) / PAGE] = snap_byte(m->dev, pfns[(a - start) / PAGE]);
	return 0;
}

int mirror_snapshot(struct mirror *m, uint64_t addr, uint64_t npages, uint8_t *bytes,
		    struct mirror_result *res)
{
	uint64_t end = addr + npages * PAGE;

	res->cpages = res->faults = 0;
	if (!m || !bytes || !range_ok(addr, npages))
		return -EINVAL;
	for (uint64_t a = addr; a < end; a += MIRROR_FAULT_WINDOW * PAGE) {
		uint64_t e = a + MIRROR_FAULT_WINDOW * PAGE < end ? a + MIRROR_FAULT_WINDOW * PAGE : end;
		int r = snapshot_window(m, a, e, bytes + (a - addr) / PAGE);

		if (r)
			return r;
		res->cpages += (e - a) / PAGE;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* exclusive access and atomics                                              */

/*
 * Take one page exclusively: make_device_exclusive (owner NULL, so our own
 * EXCLUSIVE invalidation clears any older entry first), then enter it with
 * the ATOMIC tag while the page is still locked — a revocation needs the
 * page lock, so it can only come after the entry exists.
 */
static int take_exclusive(struct mirror *m, uint64_t addr)
{
	uint64_t deadline = now_ms() + MIRROR_FAULT_TIMEOUT_MS;

	for (;;) {
		struct dmm_pte_info pi;
		unsigned long seq;
		uint64_t pfn;
		bool mapped;
		int r;

		if (now_ms() > deadline)
			return -EBUSY;
		dmm_mmap_read_lock(m->mm);
		r = dmm_make_device_exclusive(m->mm, addr, NULL, &pfn);
		if (r) {
			dmm_mmap_read_unlock(m->mm);
			return r;
		}
		/* The page lock keeps a revocation away, but not a zap
		 * (MADV_DONTNEED): the sequence, taken after our own EXCLUSIVE
		 * invalidation, and the entry itself tell us it is still ours. */
		seq = dmm_mmu_interval_read_begin(&m->notifier);
		mapped = !dmm_pte_query_locked(m->mm, addr, &pi) && pi.kind == DMM_PTE_DEVICE_EXCLUSIVE &&
			 pi.pfn == pfn;
		pthread_mutex_lock(&m->lock);
		if (mapped && !dmm_mmu_interval_read_retry(&m->notifier, seq))
			r = ptab_set(m->pt, addr, pfn, MIRROR_ATOMIC);
		else
			r = -EAGAIN;
		pthread_mutex_unlock(&m->lock);
		dmm_unlock_page(m->dev->sys, pfn);
		dmm_put_page(m->dev->sys, pfn);
		dmm_mmap_read_unlock(m->mm);
		if (r != -EAGAIN)
			return r;
	}
}

int mirror_exclusive(struct mirror *m, uint64_t addr, uint64_t npages, void *buf, struct mirror_result *res)
{
	int r = 0;

	res->cpages = res->faults = 0;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	if (buf && !m->dev->contents)
		return -EOPNOTSUPP;
	for (uint64_t i = 0; i < npages && !r; i++)
		r = take_exclusive(m, addr + i * PAGE);
	if (r)
		return r;
	return mirror_read(m, addr, npages, buf, res);
}

int mirror_check_exclusive(struct mirror *m, uint64_t addr, uint64_t npages)
{
	int r = 0;

	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (uint64_t i = 0; i < npages && !r; i++) {
		enum mirror_tag tag;
		uint64_t pfn;

		if (ptab_get(m->pt, addr + i * PAGE, &pfn, &tag) && tag == MIRROR_ATOMIC)
			r = -EPERM;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* Add to every word of one page if the table allows it now. */
static bool try_atomic_add(struct mirror *m, uint64_t addr, uint32_t value)
{
	enum mirror_tag tag;
	uint64_t pfn;
	bool ok;

	pthread_mutex_lock(&m->lock);
	ok = ptab_get(m->pt, addr, &pfn, &tag) &&
	     (pfn_is_own(m->dev, pfn) ? tag >= MIRROR_WRITE : tag == MIRROR_ATOMIC);
	if (ok) {
		uint32_t *w = frame_data(m->dev, pfn);

		for (unsigned int i = 0; i < PAGE / 4; i++)
			__atomic_fetch_add(&w[i], value, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&m->lock);
	return ok;
}

/* Is the page one of our own device pages right now (a snapshot)? */
static bool page_is_own_now(struct mirror *m, uint64_t addr)
{
	uint8_t b = 0;
	struct mirror_result tmp;

	if (mirror_snapshot(m, addr, 1, &b, &tmp))
		return false;
	b &= 0x70;
	return b == MIRROR_SNAP_OWN_PRIVATE || b == MIRROR_SNAP_OWN_COHERENT;
}

int mirror_atomic_add(struct mirror *m, uint64_t addr, uint64_t npages, uint32_t value,
		      struct mirror_result *res)
{
	res->cpages = res->faults = 0;
	if (!m || !range_ok(addr, npages))
		return -EINVAL;
	if (!m->dev->contents)
		return -EOPNOTSUPP;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t a = addr + i * PAGE;
		int tries = 0;

		while (!try_atomic_add(m, a, value)) {
			int r;

			if (++tries > 1000)
				return -EBUSY;
			res->faults++;
			/* Own device pages need a writable entry; system memory
			 * needs exclusive access. */
			if (page_is_own_now(m, a))
				r = mirror_fault_range(m, a, a + PAGE, true);
			else
				r = take_exclusive(m, a);
			if (r == MIGRATED_OWN)
				res->faults++;
			else if (r)
				return r;
		}
		res->cpages++;
	}
	return 0;
}
