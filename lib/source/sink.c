/* sink.c - output sinks: where a writer's bytes go (struct scimg_sink in
 * scimg-int.h), the counterpart of the byte sources below the readers.
 * A file, an offset window inside another sink (a container's member), or
 * a directory the writer makes its files in.  The writes themselves: a
 * short write is continued, EINTR retried, every error names the file and
 * the offset.
 *
 * A file sink also owns the files made beside it (scimg_int_sink_add_file:
 * a monolithicFlat VMDK's "-flat.vmdk" beside its descriptor): each is a
 * file sink of its own, written under a hidden temporary name and renamed
 * into place by scimg_int_sink_files_commit() when the whole output is
 * complete, or removed by scimg_int_sink_files_release().
 *
 * A directory sink's files (the ami bundle's parts and manifest) are made
 * and renamed inside it by scimg_int_sink_dir_create() and _dir_rename();
 * they are committed or removed with the directory itself (image-write.c). */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scimg-int.h"

void scimg_int_sink_file(struct scimg_sink *s, int fd, const char *path, int isblk, int isdir)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->path = path;
	s->isblk = isblk;
	s->isdir = isdir;
}

void scimg_int_sink_window(struct scimg_sink *win, const struct scimg_sink *outer,
			   uint64_t base, const char *name)
{
	*win = *outer;
	win->base = outer->base + base;
	win->name = name;
	win->member = 1;
	win->files = NULL; /* OUTER's files stay OUTER's */
}

const char *scimg_int_sink_name(const struct scimg_sink *s)
{
	const char *slash;

	if (s->name)
		return s->name;
	slash = strrchr(s->path, '/');
	return slash ? slash + 1 : s->path;
}

int scimg_int_sink_span(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len, uint64_t *start)
{
	uint64_t end;

	if (!scimg_add_ok(off, s->base, &off) || !scimg_add_ok(off, len, &end))
		return scimg_int_err(ctx, -EFBIG, "'%s': write offset overflows", s->path);
	*start = off;
	return 0;
}

/* [OFF, OFF+LEN) of the file itself (absolute offsets). */
static int file_pwrite(struct scimg_ctx *ctx, const struct scimg_sink *s,
		       const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(s->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return scimg_int_err(ctx, -errno,
					     "'%s': write error at offset %llu: %s",
					     s->path, (unsigned long long)off,
					     strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int scimg_int_sink_pwrite(struct scimg_ctx *ctx, const struct scimg_sink *s,
			  const void *buf, size_t len, uint64_t off)
{
	int ret = scimg_int_sink_span(ctx, s, off, len, &off);

	return ret < 0 ? ret : file_pwrite(ctx, s, buf, len, off);
}

int scimg_int_sink_truncate(struct scimg_ctx *ctx, const struct scimg_sink *s,
			    uint64_t size)
{
	if (!scimg_add_ok(size, s->base, &size))
		return scimg_int_err(ctx, -EFBIG, "'%s': file size overflows", s->path);
	if (ftruncate(s->fd, (off_t)size) < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not set size to %llu: %s",
				     s->path, (unsigned long long)size, strerror(errno));
	return 0;
}

/* BLKZEROOUT on a block device, a punched hole in a regular file, else
 * written zeros. */
int scimg_int_sink_zero(struct scimg_ctx *ctx, const struct scimg_sink *s,
			uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];
	int ret;

	if (!len)
		return 0;
	if ((ret = scimg_int_sink_span(ctx, s, off, len, &off)) < 0)
		return ret;
	if (s->isblk) {
		uint64_t r[2] = { off, len };
		if (off % 512 == 0 && len % 512 == 0 && ioctl(s->fd, BLKZEROOUT, r) == 0)
			return 0;
	} else {
		if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
	}
	while (len) {
		size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		if ((ret = file_pwrite(ctx, s, zeros, n, off)) < 0)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- temporary names, and files beside a sink ------------------------- */

void scimg_int_sink_temp_name(char *buf, size_t n, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	const char *base = slash ? slash + 1 : path;
	static unsigned counter;

	snprintf(buf, n, "%.*s.%s.scimg-%ld-%u", (int)dlen, path, base,
		 (long)getpid(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^
			 (unsigned)time(NULL));
}

int scimg_int_sink_temp(struct scimg_ctx *ctx, const char *path, char **tmp_out,
			int *fd_out)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	char *tmp;
	size_t n;
	int i;

	if (!*base)
		return scimg_int_err(ctx, -EISDIR, "'%s': output must be a file name", path);
	n = strlen(path) + 40;
	tmp = malloc(n);
	if (!tmp)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	for (i = 0; i < 100; i++) {
		int fd;
		scimg_int_sink_temp_name(tmp, n, path);
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd >= 0) {
			*tmp_out = tmp;
			*fd_out = fd;
			return 0;
		}
		if (errno != EEXIST) {
			int e = errno;
			free(tmp);
			return scimg_int_err(ctx, -e, "could not create a temporary file beside '%s': %s",
					     path, strerror(e));
		}
	}
	free(tmp);
	return scimg_int_err(ctx, -EEXIST, "could not create a temporary file beside '%s'", path);
}

int scimg_int_sink_check_not_input(struct scimg_ctx *ctx, const struct scimg_image *guard,
				   const char *path, const struct stat *st)
{
	if (guard && scimg_int_image_uses_file(guard, st->st_dev, st->st_ino))
		return scimg_int_err(ctx, -EPERM,
				     "'%s' is the input or a file the input reads from ('%s'); refusing to overwrite it",
				     path, guard->path);
	return 0;
}

/* A file made beside a file sink: the sink it is written through (its
 * temporary file; fd -1 once closed), its final and temporary names. */
struct scimg_sink_file {
	struct scimg_sink sink;
	char *path;
	char *tmp_path;
	int renamed;
	struct scimg_sink_file *next;
};

int scimg_int_sink_add_file(struct scimg_ctx *ctx, struct scimg_sink *s,
			    const char *name, const struct scimg_image *guard,
			    struct scimg_sink **out)
{
	const char *slash = strrchr(s->path, '/');
	size_t dlen = slash ? (size_t)(slash - s->path) + 1 : 0;
	struct scimg_sink_file *f, **tail;
	struct stat st;
	char *path;
	int ret;

	*out = NULL;
	if (s->isdir || s->member)
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': companion file '%s' cannot be made beside %s",
				     s->path, name, s->isdir ? "a directory output" : "a member of a container");
	if (!*name || strchr(name, '/'))
		return scimg_int_err(ctx, -EINVAL, "'%s': bad companion file name '%s'",
				     s->path, name);
	path = malloc(dlen + strlen(name) + 1);
	if (!path)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	memcpy(path, s->path, dlen);
	strcpy(path + dlen, name);
	if (strcmp(path, s->path) == 0) {
		free(path);
		return scimg_int_err(ctx, -EINVAL, "'%s': companion file has the same name",
				     s->path);
	}
	for (tail = &s->files; *tail; tail = &(*tail)->next)
		if (strcmp((*tail)->path, path) == 0) {
			free(path);
			return scimg_int_err(ctx, -EINVAL, "'%s': companion file '%s' made twice",
					     s->path, name);
		}
	if (s->inplace) {
		free(path);
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': this output needs a companion file '%s', which cannot be written beside a target written in place",
				     s->path, name);
	}
	if (stat(path, &st) == 0) {
		ret = scimg_int_sink_check_not_input(ctx, guard, path, &st);
		if (ret == 0 && !S_ISREG(st.st_mode))
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s' (companion file of '%s') is %s; refusing to replace it",
					    path, s->path, scimg_int_file_type_name(st.st_mode));
		if (ret < 0) {
			free(path);
			return ret;
		}
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		free(path);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	f->path = path;
	scimg_int_sink_file(&f->sink, -1, path, 0, 0);
	ret = scimg_int_sink_temp(ctx, path, &f->tmp_path, &f->sink.fd);
	if (ret < 0) {
		free(path);
		free(f);
		return ret;
	}
	*tail = f;
	*out = &f->sink;
	return 0;
}

int scimg_int_sink_files_commit(struct scimg_ctx *ctx, struct scimg_sink *s, int sync)
{
	struct scimg_sink_file *f;
	int ret = 0;

	for (f = s->files; ret == 0 && f; f = f->next) {
		if (sync && fdatasync(f->sink.fd) < 0 && errno != EINVAL) {
			ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s",
					    f->path, strerror(errno));
			close(f->sink.fd);
		} else if (close(f->sink.fd) < 0)
			ret = scimg_int_err(ctx, -errno, "'%s': %s", f->path, strerror(errno));
		f->sink.fd = -1;
	}
	for (f = s->files; ret == 0 && f; f = f->next) {
		if (rename(f->tmp_path, f->path) < 0)
			ret = scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
					    f->path, strerror(errno));
		else
			f->renamed = 1;
	}
	return ret;
}

void scimg_int_sink_files_release(struct scimg_sink *s, int discard)
{
	struct scimg_sink_file *f, *next;

	for (f = s->files; f; f = next) {
		next = f->next;
		if (f->sink.fd >= 0)
			close(f->sink.fd);
		if (discard)
			unlink(f->renamed ? f->path : f->tmp_path);
		free(f->path);
		free(f->tmp_path);
		free(f);
	}
	s->files = NULL;
}

void scimg_int_sink_writeback(const struct scimg_sink *s)
{
	const struct scimg_sink_file *f;

	if (s->fd >= 0 && !s->isdir)
		(void)sync_file_range(s->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (f = s->files; f; f = f->next)
		if (f->sink.fd >= 0)
			(void)sync_file_range(f->sink.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* ---- files inside a directory sink ------------------------------------ */

/* 0, or -errno with the message when S is not a directory or NAME is not
 * a plain file name. */
static int dir_name_ok(struct scimg_ctx *ctx, const struct scimg_sink *s,
		       const char *name)
{
	if (!s->isdir)
		return scimg_int_err(ctx, -ENOTSUP,
				     "'%s': file '%s' cannot be made inside an output that is not a directory",
				     s->path, name);
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return scimg_int_err(ctx, -EINVAL, "'%s': bad file name '%s' inside a directory output",
				     s->path, name);
	return 0;
}

int scimg_int_sink_dir_create(struct scimg_ctx *ctx, const struct scimg_sink *s,
			      const char *name, const char *what, int *fd_out)
{
	int ret;

	*fd_out = -1;
	if ((ret = dir_name_ok(ctx, s, name)) < 0)
		return ret;
	*fd_out = openat(s->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
	if (*fd_out < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not create %s%s'%s': %s",
				     s->path, what ? what : "", what ? " " : "", name,
				     strerror(errno));
	return 0;
}

int scimg_int_sink_dir_rename(struct scimg_ctx *ctx, const struct scimg_sink *s,
			      const char *from, const char *to)
{
	int ret;

	if ((ret = dir_name_ok(ctx, s, from)) < 0 || (ret = dir_name_ok(ctx, s, to)) < 0)
		return ret;
	if (renameat(s->fd, from, s->fd, to) < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not rename '%s': %s",
				     s->path, from, strerror(errno));
	return 0;
}
