/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the scenario-language front end: any byte string
 * must either parse or be refused with a diagnostic, and a parsed script
 * must expand (every combination, bounded) without crashing or leaking.
 */
#include <stddef.h>
#include <stdint.h>

#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script *s;
	struct diag d;

	if (script_parse("fuzz.dmm", (const char *)data, size, &s, &d))
		return 0;
	for (size_t c = 0; c < script_combo_count(s) && c < 4; c++) {
		struct script_iter *it;
		const struct step *st;
		unsigned long n = 0;

		if (script_iter_start(s, c, &it, &d))
			continue;
		while (n++ < 100000 && script_iter_next(it, &st, &d) > 0)
			;
		script_iter_free(it);
	}
	script_free(s);
	return 0;
}
