/* SPDX-License-Identifier: MIT */
/*
 * The fixed table of error names a script may expect after "->". It is
 * the errors the library and the mirror can return (semantics.md,
 * mirror-device.md) plus the common ones a test may want to rule out; a
 * name outside it is a syntax error, so a typo such as EFUALT cannot make a
 * step expect an error that never comes.
 */
#include <errno.h>
#include <string.h>

#include "script_int.h"

#ifndef EHWPOISON
#define EHWPOISON 133 /* Linux's value; not every libc names it */
#endif

static const struct {
	const char *name;
	int value;
} errnames[] = {
	{ "EPERM", EPERM },	    { "ENOENT", ENOENT },     { "ESRCH", ESRCH },
	{ "EINTR", EINTR },	    { "EIO", EIO },	      { "ENXIO", ENXIO },
	{ "E2BIG", E2BIG },	    { "EBADF", EBADF },	      { "ECHILD", ECHILD },
	{ "EAGAIN", EAGAIN },	    { "ENOMEM", ENOMEM },     { "EACCES", EACCES },
	{ "EFAULT", EFAULT },	    { "EBUSY", EBUSY },	      { "EEXIST", EEXIST },
	{ "EXDEV", EXDEV },	    { "ENODEV", ENODEV },     { "EINVAL", EINVAL },
	{ "ENFILE", ENFILE },	    { "EMFILE", EMFILE },     { "EFBIG", EFBIG },
	{ "ENOSPC", ENOSPC },	    { "ESPIPE", ESPIPE },     { "EROFS", EROFS },
	{ "EMLINK", EMLINK },	    { "ERANGE", ERANGE },     { "EDEADLK", EDEADLK },
	{ "ENOSYS", ENOSYS },	    { "ENODATA", ENODATA },   { "ETIMEDOUT", ETIMEDOUT },
	{ "EOVERFLOW", EOVERFLOW }, { "EOPNOTSUPP", EOPNOTSUPP }, { "ECANCELED", ECANCELED },
	{ "EHWPOISON", EHWPOISON },
};

int script_errno_value(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (!strcmp(errnames[i].name, name))
			return errnames[i].value;
	return 0;
}

const char *script_errno_name(int err)
{
	for (size_t i = 0; i < ARRAY_SIZE(errnames); i++)
		if (errnames[i].value == err)
			return errnames[i].name;
	return NULL;
}

bool looks_like_errname(const char *s, size_t len)
{
	if (len < 2 || s[0] != 'E')
		return false;
	for (size_t i = 1; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}
