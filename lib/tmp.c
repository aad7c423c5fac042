/* tmp.c - the one way libscimg makes temporary files and directories.
 *
 * Three kinds, each for one use:
 *  - beside a path (scimg_int_tmp_beside): a hidden ".BASE.scimg-TAG-XXXXXX"
 *    file or directory in the same directory as PATH, so that a rename()
 *    onto PATH is atomic and nothing crosses file systems (the SCI build's
 *    package and working directory, --partition's new disk);
 *  - scratch (scimg_int_tmp_scratch): an anonymous file in a directory,
 *    O_TMPFILE where the file system has it, else a named file unlinked at
 *    once: nothing is left behind whatever happens (gce-tar's data);
 *  - private (scimg_int_tmp_dir): a mode-0700 directory under $TMPDIR (or
 *    DEFDIR) for work files that are not the output (check's disk copy and
 *    initramfs downloads, boot-test's overlay).
 * (The output of a convert is image-write.c's own O_TMPFILE, linked in when
 * complete: it needs the linkat through /proc of that file.)
 * Every function sets the message on CTX and returns -errno. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scimg-int.h"

char *scimg_int_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

int scimg_int_tmp_beside(struct scimg_ctx *ctx, const char *path, const char *tag,
			 int directory, char **name, int *fd)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char *dir = scimg_int_dirname(path), *t = NULL;
	int e;

	*name = NULL;
	if (fd)
		*fd = -1;
	if (!dir || asprintf(&t, "%s/.%s.scimg-%s-XXXXXX", dir, *base ? base : "out", tag) < 0) {
		free(dir);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	free(dir);
	if (directory) {
		if (mkdtemp(t)) {
			*name = t;
			return 0;
		}
	} else {
		int f = mkostemp(t, O_CLOEXEC);
		if (f >= 0) {
			if (fd)
				*fd = f;
			else
				close(f);
			*name = t;
			return 0;
		}
	}
	e = errno;
	free(t);
	return scimg_int_err(ctx, -e, "could not create a temporary %s beside '%s': %s",
			     directory ? "directory" : "file", path, strerror(e));
}

int scimg_int_tmp_scratch(struct scimg_ctx *ctx, const char *dir, const char *what, int *fd)
{
	char *t = NULL;
	int e;

	*fd = -1;
#ifdef O_TMPFILE
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return 0;
#endif
	if (asprintf(&t, "%s/.scimg-scratch-XXXXXX", dir) < 0)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	*fd = mkostemp(t, O_CLOEXEC);
	e = errno;
	if (*fd >= 0)
		unlink(t);
	free(t);
	if (*fd >= 0)
		return 0;
	return scimg_int_err(ctx, -e, "%s: could not make a temporary file in '%s': %s",
			     what, dir, strerror(e));
}

int scimg_int_tmp_dir(struct scimg_ctx *ctx, const char *tag, const char *base,
		      const char *defdir, char **name)
{
	const char *td = base ? base : getenv("TMPDIR");
	char *t = NULL;
	int e;

	*name = NULL;
	if (asprintf(&t, "%s/scimg-%s-XXXXXX", td && *td ? td : defdir, tag) < 0)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	if (mkdtemp(t)) {
		*name = t;
		return 0;
	}
	e = errno;
	scimg_int_err(ctx, -e, "could not create a temporary directory '%s': %s", t, strerror(e));
	free(t);
	return -e;
}
