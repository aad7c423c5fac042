/* eio.c - LD_PRELOAD fault injection for tests: pread() on the file named by
 * SCIMG_FAULT_PATH fails with EIO when the range reaches SCIMG_FAULT_OFFSET,
 * as a failing disk sector would.  With SCIMG_FAULT_NO_TMPFILE set, open()
 * with O_TMPFILE fails with EOPNOTSUPP, as on a file system without it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

ssize_t pread(int fd, void *buf, size_t n, off_t off);
ssize_t pread64(int fd, void *buf, size_t n, off_t off);

static int faulty(int fd, size_t n, off_t off)
{
	const char *path = getenv("SCIMG_FAULT_PATH");
	const char *o = getenv("SCIMG_FAULT_OFFSET");
	char link[64], target[PATH_MAX];
	ssize_t l;
	long long at;

	if (!path || !o)
		return 0;
	at = atoll(o);
	if (off + (off_t)n <= at)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	l = readlink(link, target, sizeof(target) - 1);
	if (l < 0)
		return 0;
	target[l] = '\0';
	return strcmp(target, path) == 0;
}

static ssize_t real_pread(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*fn)(int, void *, size_t, off_t);
	if (!fn)
		fn = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
	return fn(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (faulty(fd, n, off)) {
		errno = EIO;
		return -1;
	}
	return real_pread(fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);

static int real_open(const char *path, int flags, mode_t mode)
{
	static int (*fn)(const char *, int, ...);
	if (!fn)
		fn = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
	return fn(path, flags, mode);
}

static int open_common(const char *path, int flags, va_list ap)
{
	mode_t mode = 0;

#ifdef O_TMPFILE
	if ((flags & O_TMPFILE) == O_TMPFILE) {
		if (getenv("SCIMG_FAULT_NO_TMPFILE")) {
			errno = EOPNOTSUPP;
			return -1;
		}
		mode = (mode_t)va_arg(ap, int);
	} else
#endif
	if (flags & O_CREAT)
		mode = (mode_t)va_arg(ap, int);
	return real_open(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int r;

	va_start(ap, flags);
	r = open_common(path, flags, ap);
	va_end(ap);
	return r;
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	int r;

	va_start(ap, flags);
	r = open_common(path, flags, ap);
	va_end(ap);
	return r;
}
