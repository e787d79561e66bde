/* SPDX-License-Identifier: MIT */
/*
 * `devmm demo` (what `make demo` runs): a guided walkthrough of
 * device-coherent and device-private memory through migration, fork,
 * copy-on-write, pinning and exclusive access. It is a scenario script
 * like any other — every claim it makes is an expectation the runner
 * checks — with a line of explanation before the steps that show
 * something.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

static const char *const demo[] = {
	"## devmm demo: device memory as Linux manages it, step by step.",
	"## Each '$' line is a step of the scenario language; expectations after '->' are checked.",
	"system pages=4096",
	"device gpu coherent pages=64",
	"device npu private pages=64",
	"",
	"## 1. Device-coherent memory at fork and on the first write.",
	"## Four pages written by the CPU, then migrated to the coherent device 'gpu'.",
	"map A 4",
	"write A i",
	"gpu migrate-to-dev A -> cpages=4 data=i",
	"where A -> gpu*4",
	"show",
	"## fork: both processes now map the same coherent frames, read-only (maps=2, refs=2).",
	"fork child",
	"where A -> gpu*4",
	"child: where A -> gpu*4",
	"stat A[0] -> refs=2 maps=2 pins=0",
	"## The parent's first write breaks copy-on-write. Linux puts the copy in SYSTEM memory:",
	"## the parent's page 0 has silently left the device; the child keeps the coherent page.",
	"write A[0] i+1",
	"where A -> sys,gpu,gpu,gpu",
	"child: where A -> gpu*4",
	"child: read A -> i",
	"read A[0] -> i+1",
	"stat A[0] -> refs=1 maps=1",
	"show",
	"",
	"## 2. How and when device pages go back to their driver.",
	"## Device pages are freed when their last reference goes (refcount 1 -> 0): folio_free.",
	"gpu pool -> used=4 free=60",
	"expect-freed gpu 0",
	"## The child exits: coherent page 0 loses its last mapping and goes back to gpu.",
	"child: exit",
	"expect-freed gpu 1",
	"gpu pool -> used=3",
	"## munmap frees the other three straight to the driver: nothing is migrated back.",
	"munmap A",
	"expect-freed gpu 4",
	"gpu pool -> used=0 free=64",
	"",
	"## 3. Which pins device pages allow.",
	"map B 2",
	"write B i",
	"gpu migrate-to-dev B -> cpages=2",
	"## A short-term pin (FOLL_PIN) leaves a coherent page on the device: refs gain 1024.",
	"gup B[0] pin as shortpin -> pinned=1",
	"where B[0] -> gpu",
	"stat B[0] -> refs=1025 maps=1 pins=1",
	"## Migration skips pinned pages: migrate-to-sys moves page 1 only and restores page 0.",
	"gpu migrate-to-sys B -> cpages=1",
	"where B -> gpu,sys",
	"unpin shortpin",
	"## A long-term pin may not hold device memory: the page moves to system RAM first,",
	"## then the system page is pinned (mainline Linux since 6.0).",
	"gup B[0] pin longterm as longpin -> pinned=1",
	"where B[0] -> sys",
	"read B -> i",
	"unpin longpin",
	"",
	"## 4. Device-private memory: the CPU can never touch it.",
	"map C 3",
	"write C i",
	"npu migrate-to-dev C -> cpages=3 data=i",
	"where C -> npu*3",
	"npu snapshot C -> snap=22*3",
	"show",
	"## A CPU read faults; the owner's migrate_to_ram brings page 0 back to system memory.",
	"read C[0] -> i",
	"where C -> sys,npu,npu",
	"## GUP never returns a device-private page: it faults page 1 back too.",
	"gup C[1] as ref -> pinned=1",
	"where C -> sys,sys,npu",
	"unpin ref",
	"## fork shares the device-private page read-only in both processes; data is not copied.",
	"fork kid",
	"npu snapshot C[2] -> snap=21",
	"kid: where C[2] -> npu",
	"stat C[2] -> refs=2 maps=2",
	"## The first CPU touch, in either process, migrates it once for both.",
	"kid: read C[2] -> i",
	"where C[2] -> sys",
	"kid: exit",
	"",
	"## 5. Device-exclusive access (device atomics on system memory).",
	"npu exclusive C[0] -> cpages=1",
	"where C[0] -> excl",
	"npu atomic-add C[0] 5 -> cpages=1",
	"npu check-exclusive C[0] -> EPERM",
	"## Any CPU access revokes the device's exclusive access and restores the entry.",
	"read C[0] -> i+5",
	"where C[0] -> sys",
	"npu check-exclusive C[0] -> ok",
	"check",
	"## The end: every invariant held after every step.",
};

int devmm_demo(int argc, char **argv)
{
	size_t n = sizeof(demo) / sizeof(demo[0]), len = 0;
	const char **notes = calloc(n + 2, sizeof(*notes));
	struct runner_opts opts = { .check_each = true, .notes = notes, .nnotes = n + 2 };
	struct script *s;
	struct diag d;
	char *text;
	int r;

	(void)argc;
	(void)argv;
	for (size_t i = 0; i < n; i++)
		len += strlen(demo[i]) + 1;
	text = malloc(len + 1);
	if (!text || !notes)
		return 1;
	text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(text, demo[i]);
		strcat(text, "\n");
	}
	/* Attach narration blocks to the line of the step that follows them. */
	{
		static char buf[64][512];
		size_t nb = 0;
		char *cur = NULL;

		for (size_t i = 0; i < n; i++) {
			if (!strncmp(demo[i], "##", 2)) {
				if (!cur && nb < 64) {
					cur = buf[nb++];
					cur[0] = '\0';
				}
				if (cur && strlen(cur) + strlen(demo[i]) + 2 < sizeof(buf[0])) {
					if (cur[0])
						strcat(cur, "\n");
					strcat(cur, demo[i] + 3);
				}
			} else if (demo[i][0] && cur) {
				notes[i + 1] = cur;
				cur = NULL;
			}
		}
	}
	r = script_parse("demo", text, strlen(text), &s, &d);
	free(text);
	if (r) {
		fprintf(stderr, "%s\n", d.text);
		free(notes);
		return 1;
	}
	r = runner_run_combo(s, 0, stdout, &opts);
	script_free(s);
	free(notes);
	printf(r ? "\ndemo: FAILED\n" : "\ndemo: every expectation held.\n");
	return r ? 1 : 0;
}
