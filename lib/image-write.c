/* image-write.c - the writer side of the image handle: create, pwrite,
 * write_zeroes, finish, abort, and where the output goes (lib/image.c has
 * the reader side).
 *
 * The target is checked before anything is created: never the input or a
 * file of its chain (scimg_int_image_uses_file), never a character device,
 * FIFO or socket, never a directory for a one-file format.  A new output is
 * an unnamed O_TMPFILE in the target's directory, linked in when complete
 * (a hidden named temporary file where the file system refuses O_TMPFILE);
 * an existing block device (or, with SCIMG_CREATE_NO_CREATE, a raw file) is
 * written in place; directory outputs and companion files (files of the
 * output's sink, lib/source/sink.c) use hidden named temporaries. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "scimg-int.h"

/* ---- writing ---------------------------------------------------------- */

static int inplace_room(struct scimg_image *img, uint64_t end)
{
	if (end > img->out_target_size)
		return scimg_int_err(img->ctx, -ENOSPC,
				     "'%s': the output needs %llu bytes, and the existing target holds only %llu",
				     img->path, (unsigned long long)end,
				     (unsigned long long)img->out_target_size);
	return 0;
}

/* In place: the writer extends its file to END; zero what lies between
 * the emulated end of file and END, as a new file would read there. */
static int inplace_extend(struct scimg_image *img, uint64_t start, uint64_t end)
{
	int ret;

	if ((ret = inplace_room(img, end)) < 0)
		return ret;
	if (start > img->out_len && !(img->create_flags & SCIMG_CREATE_TARGET_IS_ZERO) &&
	    (ret = scimg_int_sink_zero(img->ctx, &img->file, img->out_len,
				       start - img->out_len)) < 0)
		return ret;
	if (end > img->out_len)
		img->out_len = end;
	return 0;
}

int scimg_int_out_pwrite(struct scimg_image *img, const void *buf, size_t len,
			 uint64_t off)
{
	uint64_t start;
	int ret;

	if (img->out_mode == SCIMG_OUT_INPLACE &&
	    ((ret = scimg_int_sink_span(img->ctx, img->out, off, len, &start)) < 0 ||
	     (ret = inplace_extend(img, start, start + len)) < 0))
		return ret;
	return scimg_int_sink_pwrite(img->ctx, img->out, buf, len, off);
}

int scimg_int_out_truncate(struct scimg_image *img, uint64_t size)
{
	if (img->out_mode == SCIMG_OUT_INPLACE) {
		/* never truncated: the emulated file grows (zeroed) or shrinks */
		int ret;
		if (!scimg_add_ok(size, img->out->base, &size))
			return scimg_int_err(img->ctx, -EFBIG, "'%s': file size overflows", img->path);
		ret = inplace_extend(img, size, size);
		if (ret == 0)
			img->out_len = size;
		return ret;
	}
	return scimg_int_sink_truncate(img->ctx, img->out, size);
}

int scimg_int_out_inplace_claim(struct scimg_image *img, uint64_t size)
{
	int ret;

	if (img->out_mode != SCIMG_OUT_INPLACE)
		return 0;
	if (!scimg_add_ok(size, img->out->base, &size))
		return scimg_int_err(img->ctx, -EFBIG, "'%s': file size overflows", img->path);
	if ((ret = inplace_room(img, size)) < 0)
		return ret;
	if (size > img->out_len)
		img->out_len = size;
	return 0;
}

int scimg_int_out_zero(struct scimg_image *img, uint64_t off, uint64_t len)
{
	if (img->out_mode != SCIMG_OUT_INPLACE ||
	    (img->create_flags & SCIMG_CREATE_TARGET_IS_ZERO) || !len)
		return 0;
	return scimg_int_sink_zero(img->ctx, img->out, off, len);
}

void scimg_int_out_writeback(struct scimg_image *img)
{
	if (!img->writing)
		return;
	scimg_int_sink_writeback(&img->file);
}

/* ---- where the output goes ------------------------------------------- */

/* Formats whose writer may target an existing block device: single files
 * written through scimg_int_out_pwrite/truncate only, readable whatever
 * lies past their end (ova reads its own output back and sizes it with
 * fstat; directories and companion files have no place on a device). */
static bool device_ok(const struct scimg_format *fmt)
{
	/* not vhd, vmdk, vhdx: their readers find footers or metadata at the
	 * end of the file, which on a larger device is not where we stop */
	static const char *const ok[] = { "raw", "qcow2", NULL };

	if (fmt->flags & SCIMG_FMT_OUTPUT_DIR)
		return false;
	for (size_t i = 0; ok[i]; i++)
		if (!strcmp(fmt->name, ok[i]))
			return true;
	return false;
}

/* A loop device TARGET (ST) whose backing file is one the input reads. */
static int check_loop_backing(struct scimg_ctx *ctx, const struct scimg_image *guard,
			      const char *path, const struct stat *st)
{
	char sys[96], name[PATH_MAX];
	struct stat bst;
	FILE *f;
	size_t n;

	if (!guard)
		return 0;
	snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(st->st_rdev), minor(st->st_rdev));
	f = fopen(sys, "re");
	if (!f)
		return 0;
	n = fread(name, 1, sizeof(name) - 1, f);
	fclose(f);
	name[n] = '\0';
	if (n && name[n - 1] == '\n')
		name[n - 1] = '\0';
	if (stat(name, &bst) == 0 && scimg_int_image_uses_file(guard, bst.st_dev, bst.st_ino))
		return scimg_int_err(ctx, -EPERM,
				     "'%s' is a loop device over '%s', which the input ('%s') reads from; refusing to overwrite it",
				     path, name, guard->path);
	return 0;
}

/* Check the target PATH of a FMT writer: *MODE gets how it will be
 * written, *EXISTS whether it exists (ST: what stat() says of it). */
static int check_target(struct scimg_ctx *ctx, const struct scimg_image *guard,
			const char *path, const struct scimg_format *fmt,
			unsigned flags, int *mode, int *exists, struct stat *st)
{
	int ret;

	*mode = SCIMG_OUT_TMPFILE;
	*exists = 0;
	if (!*path)
		return scimg_int_err(ctx, -EINVAL, "the output file name is empty");
	if (path[strlen(path) - 1] == '/' && !(fmt->flags & SCIMG_FMT_OUTPUT_DIR))
		return scimg_int_err(ctx, -EISDIR,
				     "'%s' names a directory, and format '%s' writes one file: name the file to write",
				     path, fmt->name);
	/* stat, not open: a FIFO is never opened, a symbolic link followed */
	if (stat(path, st) < 0) {
		if (errno != ENOENT)
			return scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		if (flags & SCIMG_CREATE_NO_CREATE)
			return scimg_int_err(ctx, -ENOENT,
					     "'%s' does not exist (writing into an existing target was asked for)",
					     path);
		return 0;
	}
	*exists = 1;
	if ((ret = scimg_int_sink_check_not_input(ctx, guard, path, st)) < 0)
		return ret;
	if (S_ISDIR(st->st_mode)) {
		if (fmt->flags & SCIMG_FMT_OUTPUT_DIR) {
			if (flags & SCIMG_CREATE_NO_CREATE)
				return scimg_int_err(ctx, -ENOTSUP,
						     "'%s': format '%s' writes a directory and cannot write into an existing target in place",
						     path, fmt->name);
			return 0;
		}
		return scimg_int_err(ctx, -EISDIR,
				     "'%s' is a directory, and format '%s' writes one file: name the file to write",
				     path, fmt->name);
	}
	if (S_ISBLK(st->st_mode)) {
		if (!device_ok(fmt))
			return scimg_int_err(ctx, -ENOTSUP,
					     "'%s' is a block device, and format '%s' cannot be written to one (raw and qcow2 can)",
					     path, fmt->name);
		if ((ret = check_loop_backing(ctx, guard, path, st)) < 0)
			return ret;
		*mode = SCIMG_OUT_INPLACE;
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return scimg_int_err(ctx, -EPERM,
				     "'%s' is %s; refusing to write the output to it (only regular files, directories and block devices are written)",
				     path, scimg_int_file_type_name(st->st_mode));
	if (fmt->flags & SCIMG_FMT_OUTPUT_DIR)
		return 0; /* make_temp_dir words it */
	if (flags & SCIMG_CREATE_NO_CREATE) {
		if (strcmp(fmt->name, "raw") != 0)
			return scimg_int_err(ctx, -ENOTSUP,
					     "'%s': an existing file can be written in place only as raw, and format '%s' cannot be updated in place (write a new file instead)",
					     path, fmt->name);
		*mode = SCIMG_OUT_INPLACE;
	}
	return 0;
}

int scimg_image_check_output(struct scimg_ctx *ctx, const struct scimg_image *src,
			     const char *path, const char *format, unsigned flags)
{
	const struct scimg_format *fmt;
	struct stat st;
	int mode, exists;

	scimg_ctx_clear_error(ctx);
	if (!format)
		return scimg_int_err(ctx, -EINVAL, "an output format is required");
	fmt = scimg_int_format_find(format);
	if (!fmt)
		return scimg_int_err_unknown_format(ctx, format);
	return check_target(ctx, src, path, fmt, flags, &mode, &exists, &st);
}

/* Open the existing target PATH (a block device, or a regular file with
 * SCIMG_CREATE_NO_CREATE) for writing in place: no O_CREAT, no O_TRUNC,
 * O_NONBLOCK so that a FIFO swapped in since the check cannot block us,
 * and the same file as checked (ST). */
static int open_inplace(struct scimg_image *img, const struct stat *st)
{
	struct scimg_ctx *ctx = img->ctx;
	struct stat fst;
	uint64_t size;
	int fd, fl;

	fd = open(img->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return scimg_int_err(ctx, -errno, "'%s': could not open for writing: %s",
				     img->path, strerror(errno));
	if (fstat(fd, &fst) < 0 || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino ||
	    (fst.st_mode & S_IFMT) != (st->st_mode & S_IFMT)) {
		close(fd);
		return scimg_int_err(ctx, -EAGAIN, "'%s' changed while it was being opened", img->path);
	}
	if ((fl = fcntl(fd, F_GETFL)) >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (S_ISBLK(fst.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			int e = errno;
			close(fd);
			return scimg_int_err(ctx, -e, "'%s': could not read the device size: %s",
					     img->path, strerror(e));
		}
		img->file.isblk = 1;
	} else {
		size = (uint64_t)fst.st_size;
	}
	img->file.fd = fd;
	img->out_target_size = size;
	img->out_len = 0;
	return 0;
}

/* An unnamed file in PATH's directory (O_TMPFILE), linked in by finish
 * through /proc/self/fd.  1 when made, 0 when the file system or the
 * kernel cannot (the caller falls back to a named temporary file). */
static int make_tmpfile(struct scimg_ctx *ctx, const char *path, int *fd_out)
{
#ifdef O_TMPFILE
	char *dir = scimg_int_dirname(path), proc[64];
	int fd, e;

	if (!dir)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
	e = errno;
	free(dir);
	if (fd < 0) {
		if (e == EOPNOTSUPP || e == EISDIR || e == EINVAL || e == ENOSYS)
			return 0;
		return scimg_int_err(ctx, -e, "could not create a temporary file beside '%s': %s",
				     path, strerror(e));
	}
	/* finish links it in through /proc: without /proc, use a name */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (access(proc, F_OK) < 0) {
		close(fd);
		return 0;
	}
	*fd_out = fd;
	return 1;
#else
	(void)ctx; (void)path; (void)fd_out;
	return 0;
#endif
}

/* Link the complete O_TMPFILE output of IMG in at its path. */
static int link_tmpfile(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	char proc[64], *tmp;
	size_t n = strlen(img->path) + 40;
	int i;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", img->file.fd);
	if (!img->out_existed) {
		if (linkat(AT_FDCWD, proc, AT_FDCWD, img->path, AT_SYMLINK_FOLLOW) == 0)
			return 0;
		if (errno != EEXIST)
			return scimg_int_err(ctx, -errno, "could not link the output in as '%s': %s",
					     img->path, strerror(errno));
	}
	/* replace the existing file atomically: a name, then rename */
	tmp = malloc(n);
	if (!tmp)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	for (i = 0; i < 100; i++) {
		scimg_int_sink_temp_name(tmp, n, img->path);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
			break;
		if (errno != EEXIST) {
			int e = errno;
			free(tmp);
			return scimg_int_err(ctx, -e, "could not link the output in beside '%s': %s",
					     img->path, strerror(e));
		}
	}
	if (i == 100) {
		free(tmp);
		return scimg_int_err(ctx, -EEXIST, "could not link the output in beside '%s'", img->path);
	}
	if (rename(tmp, img->path) < 0) {
		int e = errno;
		unlink(tmp);
		free(tmp);
		return scimg_int_err(ctx, -e, "could not rename into '%s': %s",
				     img->path, strerror(e));
	}
	free(tmp);
	return 0;
}

/* Remove the files in directory DIR (flat: writers make no
 * subdirectories), then DIR itself.  Best effort. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(dir);
}

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			empty = 0;
			break;
		}
	closedir(d);
	return empty;
}

/* Temporary directory for a SCIMG_FMT_OUTPUT_DIR writer: beside PATH when
 * PATH does not exist or is an empty directory (renamed over it at the
 * end), inside PATH when it is a directory with files in it. */
static int make_temp_dir(struct scimg_ctx *ctx, const char *path,
			 char **tmp_out, int *fd_out, int *inside)
{
	static unsigned counter;
	struct stat st;
	char *p, *tmp = NULL;
	const char *slash, *base;
	size_t dlen, n;
	int i, ret;

	p = strdup(path);
	if (!p)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	*inside = 0;
	if (stat(p, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			ret = scimg_int_err(ctx, -ENOTDIR,
					    "'%s' exists and is not a directory (this format writes a directory of files)",
					    path);
			goto out;
		}
		*inside = !dir_is_empty(p);
	} else if (errno != ENOENT) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	slash = strrchr(p, '/');
	dlen = slash ? (size_t)(slash - p) + 1 : 0;
	base = slash ? slash + 1 : p;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
		if (!*inside) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': name a new or existing directory for the output",
					    path);
			goto out;
		}
	}
	n = strlen(p) + strlen(base) + 48;
	tmp = malloc(n);
	if (!tmp) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < 100; i++) {
		unsigned c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) ^
			     (unsigned)time(NULL);
		if (*inside)
			snprintf(tmp, n, "%s/.scimg-%ld-%u", p, (long)getpid(), c);
		else
			snprintf(tmp, n, "%.*s.%s.scimg-%ld-%u", (int)dlen, p, base,
				 (long)getpid(), c);
		if (mkdir(tmp, 0777) == 0)
			break;
		if (errno != EEXIST) {
			ret = scimg_int_err(ctx, -errno,
					    "could not create a temporary directory for '%s': %s",
					    path, strerror(errno));
			goto out;
		}
	}
	if (i == 100) {
		ret = scimg_int_err(ctx, -EEXIST, "could not create a temporary directory for '%s'", path);
		goto out;
	}
	*fd_out = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd_out < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", tmp, strerror(errno));
		rmdir(tmp);
		goto out;
	}
	*tmp_out = tmp;
	tmp = NULL;
	ret = 0;
out:
	free(tmp);
	free(p);
	return ret;
}

/* Move the finished temporary directory of IMG into place. */
static int place_dir(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	DIR *d;
	struct dirent *e;
	int tfd, dfd, ret = 0;

	if (!img->out_inside) {
		if (rename(img->tmp_path, img->path) < 0)
			return scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
					     img->path, strerror(errno));
		return 0;
	}
	dfd = open(img->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return scimg_int_err(ctx, -errno, "'%s': %s", img->path, strerror(errno));
	d = opendir(img->tmp_path);
	if (!d) {
		close(dfd);
		return scimg_int_err(ctx, -errno, "'%s': %s", img->tmp_path, strerror(errno));
	}
	tfd = dirfd(d);
	/* first: no member may replace a file the input reads, or anything
	 * but a regular file */
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dfd, e->d_name, &st, 0) < 0)
			continue;
		if ((ret = scimg_int_sink_check_not_input(ctx, img->guard, e->d_name, &st)) < 0)
			break;
		if (!S_ISREG(st.st_mode)) {
			ret = scimg_int_err(ctx, -EPERM, "'%s' in '%s' is %s; refusing to replace it",
					    e->d_name, img->path, scimg_int_file_type_name(st.st_mode));
			break;
		}
	}
	if (ret < 0) {
		closedir(d);
		close(dfd);
		return ret;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (img->out_last && !strcmp(e->d_name, img->out_last))
			continue;
		if (renameat(tfd, e->d_name, dfd, e->d_name) < 0) {
			ret = scimg_int_err(ctx, -errno, "could not move '%s' into '%s': %s",
					    e->d_name, img->path, strerror(errno));
			break;
		}
	}
	if (ret == 0 && img->out_last &&
	    renameat(tfd, img->out_last, dfd, img->out_last) < 0)
		ret = scimg_int_err(ctx, -errno, "could not move '%s' into '%s': %s",
				    img->out_last, img->path, strerror(errno));
	closedir(d);
	if (ret == 0)
		fsync(dfd);
	close(dfd);
	if (ret == 0)
		rmdir(img->tmp_path);
	return ret;
}

static void remove_temp(struct scimg_image *img)
{
	if (!img->tmp_path)
		return;
	if (img->fmt->flags & SCIMG_FMT_OUTPUT_DIR)
		remove_dir(img->tmp_path);
	else
		unlink(img->tmp_path);
}

int scimg_int_out_file(struct scimg_image *img, const char *name,
		       struct scimg_sink **out)
{
	return scimg_int_sink_add_file(img->ctx, &img->file, name, img->guard, out);
}

int scimg_image_create(struct scimg_ctx *ctx, const char *path,
		       const char *format, uint64_t size, const char *options,
		       unsigned flags, struct scimg_image **out)
{
	return scimg_int_image_create(ctx, path, format, size, options, flags, NULL, out);
}

int scimg_int_image_create(struct scimg_ctx *ctx, const char *path,
			   const char *format, uint64_t size, const char *options,
			   unsigned flags, const struct scimg_image *guard,
			   struct scimg_image **out)
{
	const struct scimg_format *fmt;
	struct scimg_image *img;
	struct stat st;
	int ret, mode, exists;

	*out = NULL;
	scimg_ctx_clear_error(ctx);
	if (!format)
		return scimg_int_err(ctx, -EINVAL, "an output format is required");
	fmt = scimg_int_format_find(format);
	if (!fmt)
		return scimg_int_err_unknown_format(ctx, format);
	if (!fmt->create)
		return scimg_int_err(ctx, -ENOTSUP, "format '%s' cannot be written", format);
	if (size > SCIMG_MAX_VIRTUAL_SIZE)
		return scimg_int_err(ctx, -EFBIG, "size %llu is too large",
				     (unsigned long long)size);
	if ((flags & SCIMG_CREATE_COMPRESS) && !fmt->compress_unit)
		return scimg_int_err(ctx, -ENOTSUP,
				     "format '%s' does not support compression (-c)", format);
	/* before anything is created: never the input, a device node, ... */
	ret = check_target(ctx, guard, path, fmt, flags, &mode, &exists, &st);
	if (ret < 0)
		return ret;
	img = calloc(1, sizeof(*img));
	if (!img)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	img->ctx = ctx;
	img->fmt = fmt;
	img->size = size;
	img->writing = 1;
	img->create_flags = flags;
	img->guard = guard;
	img->out_existed = exists;
	img->path = strdup(path);
	if (!img->path) {
		free(img);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	scimg_int_sink_file(&img->file, -1, img->path, 0, (fmt->flags & SCIMG_FMT_OUTPUT_DIR) != 0);
	img->out = &img->file;
	ret = scimg_int_opts_parse(ctx, options, fmt->create_opts, fmt->name, &img->opts);
	if (ret < 0)
		goto fail;
	if (fmt->flags & SCIMG_FMT_OUTPUT_DIR) {
		img->out_mode = SCIMG_OUT_NAMED;
		ret = make_temp_dir(ctx, path, &img->tmp_path, &img->file.fd,
				    &img->out_inside);
	} else if (mode == SCIMG_OUT_INPLACE) {
		img->out_mode = SCIMG_OUT_INPLACE;
		img->file.inplace = 1;
		ret = open_inplace(img, &st);
	} else {
		img->out_mode = SCIMG_OUT_TMPFILE;
		ret = make_tmpfile(ctx, path, &img->file.fd);
		if (ret == 0) {
			img->out_mode = SCIMG_OUT_NAMED;
			ret = scimg_int_sink_temp(ctx, path, &img->tmp_path, &img->file.fd);
		} else if (ret > 0) {
			ret = 0;
		}
	}
	if (ret < 0)
		goto fail;
	ret = fmt->create(img, &img->opts);
	if (ret < 0) {
		remove_temp(img);
		scimg_int_sink_files_release(&img->file, 1);
		goto fail;
	}
	*out = img;
	return 0;
fail:
	if (img->file.fd >= 0)
		close(img->file.fd);
	scimg_int_opts_free(&img->opts);
	free(img->out_last);
	free(img->tmp_path);
	free(img->path);
	free(img);
	return ret;
}

int scimg_image_pwrite(struct scimg_image *img, const void *buf, size_t len,
		       uint64_t off)
{
	int ret;

	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	if ((ret = scimg_int_check_range(img, off, len)) < 0)
		return ret;
	if (!len)
		return 0;
	return img->fmt->pwrite(img, buf, len, off);
}

int scimg_image_write_zeroes(struct scimg_image *img, uint64_t off,
			     uint64_t len)
{
	int ret;

	if (!img->writing)
		return scimg_int_err(img->ctx, -EBADF, "'%s' is not open for writing", img->path);
	if ((ret = scimg_int_check_range(img, off, len)) < 0)
		return ret;
	if (!len || !img->fmt->write_zeroes)
		return 0;
	return img->fmt->write_zeroes(img, off, len);
}

static void writer_free(struct scimg_image *img)
{
	if (img->fmt->close)
		img->fmt->close(img);
	if (img->file.fd >= 0)
		close(img->file.fd);
	scimg_int_opts_free(&img->opts);
	free(img->out_last);
	free(img->tmp_path);
	free(img->path);
	free(img);
}

int scimg_image_finish(struct scimg_image *img)
{
	struct scimg_ctx *ctx = img->ctx;
	int no_sync = (img->create_flags & SCIMG_CREATE_NO_SYNC) != 0;
	int ret = 0;

	if (!img->writing) {
		scimg_image_close(img);
		return scimg_int_err(ctx, -EBADF, "image is not open for writing");
	}
	if (img->fmt->finish)
		ret = img->fmt->finish(img);
	/* companion files first: the main file appears last, complete */
	if (ret == 0)
		ret = scimg_int_sink_files_commit(ctx, &img->file, !no_sync);
	if (ret == 0 && !no_sync && fdatasync(img->file.fd) < 0 && errno != EINVAL)
		ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s",
				    img->path, strerror(errno));
	/* an unnamed file is linked in while its descriptor is open */
	if (ret == 0 && img->out_mode == SCIMG_OUT_TMPFILE)
		ret = link_tmpfile(img);
	if (ret == 0 && close(img->file.fd) < 0)
		ret = scimg_int_err(ctx, -errno, "'%s': %s", img->path, strerror(errno));
	img->file.fd = -1;
	if (ret == 0 && (img->fmt->flags & SCIMG_FMT_OUTPUT_DIR))
		ret = place_dir(img);
	else if (ret == 0 && img->out_mode == SCIMG_OUT_NAMED &&
		 rename(img->tmp_path, img->path) < 0)
		ret = scimg_int_err(ctx, -errno, "could not rename into '%s': %s",
				    img->path, strerror(errno));
	if (ret < 0)
		remove_temp(img);
	scimg_int_sink_files_release(&img->file, ret < 0);
	writer_free(img);
	return ret;
}

void scimg_image_abort(struct scimg_image *img)
{
	if (!img)
		return;
	remove_temp(img);
	scimg_int_sink_files_release(&img->file, 1);
	writer_free(img);
}
