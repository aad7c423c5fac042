/* edit.c - changes made to an image in place: scimg_image_resize() and
 * scimg_image_set_backing().  Only the file named is opened for writing
 * (never a file of its chain); the format's code validates the metadata it
 * changes (lib/formats/qcow2-edit.c). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scimg-int.h"
#include "formats/qcow2.h"

/* The format of PATH: FORMAT when given, else what probes, else raw. */
static int edit_format(struct scimg_ctx *ctx, const char *path, const char *format,
		       const char **out)
{
	const char *f = NULL;
	int ret;

	if (format) {
		if (!scimg_int_format_find(format))
			return scimg_int_err_unknown_format(ctx, format);
		*out = format;
		return 0;
	}
	if (scimg_int_name_is_url(path))
		return scimg_int_err(ctx, -EINVAL, "'%s': a URL cannot be changed in place", path);
	ret = scimg_image_probe(ctx, path, &f);
	if (ret < 0)
		return ret;
	*out = f ? f : "raw";
	return 0;
}

static int open_rw(struct scimg_ctx *ctx, const char *path, int *fd)
{
	struct stat st;

	*fd = open(path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return scimg_int_err(ctx, -errno, "could not open '%s' for writing: %s", path,
				     strerror(errno));
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return scimg_int_err(ctx, -EINVAL, "'%s': not a regular file", path);
	}
	return 0;
}

/* Virtual size of the backing file of qcow2 image PATH (0 when none),
 * through the library's own open (which applies the chain rules). */
static int backing_size(struct scimg_ctx *ctx, const char *path, uint64_t *out)
{
	struct scimg_image *img = NULL;
	json_object *info = NULL, *b, *v, *spec, *top;
	int ret;

	*out = 0;
	ret = scimg_image_open(ctx, path, "qcow2", &img);
	if (ret < 0)
		return ret;
	ret = scimg_image_info(img, &info);
	top = info;
	/* the qcow2 keys are at the top or in format-specific */
	if (ret == 0 && !json_object_object_get_ex(info, "backing-filename", &b) &&
	    json_object_object_get_ex(info, "format-specific", &spec) &&
	    json_object_object_get_ex(spec, "backing-filename", &b))
		top = spec;
	if (ret == 0 && json_object_object_get_ex(top, "backing-filename", &b)) {
		if (!json_object_object_get_ex(top, "backing-image", &b) ||
		    !json_object_object_get_ex(b, "virtual-size", &v))
			ret = scimg_int_err(ctx, -EINVAL, "'%s': the size of its backing file is unknown",
					    path);
		else
			*out = (uint64_t)json_object_get_int64(v);
	}
	json_object_put(info);
	scimg_image_close(img);
	return ret;
}

int scimg_image_resize(struct scimg_ctx *ctx, const char *path, const char *format,
		       uint64_t size, unsigned flags)
{
	const char *f;
	uint64_t bsize = 0;
	struct stat st;
	int fd = -1, ret;

	scimg_ctx_clear_error(ctx);
	if ((ret = edit_format(ctx, path, format, &f)) < 0)
		return ret;
	if (size > SCIMG_MAX_VIRTUAL_SIZE)
		return scimg_int_err(ctx, -EFBIG, "size %llu is too large", (unsigned long long)size);
	if (!strcmp(f, "raw")) {
		if ((ret = open_rw(ctx, path, &fd)) < 0)
			return ret;
		if (fstat(fd, &st) < 0) {
			ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		} else if (size < (uint64_t)st.st_size && !(flags & SCIMG_RESIZE_SHRINK)) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': %llu bytes is smaller than the current size %llu; shrinking loses data and needs --shrink",
					    path, (unsigned long long)size, (unsigned long long)st.st_size);
		} else if (ftruncate(fd, (off_t)size) < 0) {
			ret = scimg_int_err(ctx, -errno, "'%s': could not resize to %llu bytes: %s",
					    path, (unsigned long long)size, strerror(errno));
		} else if (fsync(fd) < 0 && errno != EINVAL) {
			ret = scimg_int_err(ctx, -errno, "'%s': could not flush: %s", path, strerror(errno));
		}
		close(fd);
		return ret;
	}
	if (!strcmp(f, "qcow2")) {
		struct scimg_image *img = NULL;

		/* validate the whole image (and learn its size) first */
		if ((ret = scimg_image_open(ctx, path, "qcow2", &img)) < 0)
			return ret;
		if (size < scimg_image_size(img) && !(flags & SCIMG_RESIZE_SHRINK)) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': %llu bytes is smaller than the current size %llu; shrinking loses data and needs --shrink",
					    path, (unsigned long long)size,
					    (unsigned long long)scimg_image_size(img));
			scimg_image_close(img);
			return ret;
		}
		scimg_image_close(img);
		if ((ret = backing_size(ctx, path, &bsize)) < 0)
			return ret;
		if ((ret = open_rw(ctx, path, &fd)) < 0)
			return ret;
		ret = scimg_int_qcow2_resize(ctx, fd, path, size, bsize,
					     (flags & SCIMG_RESIZE_SHRINK) != 0);
		close(fd);
		return ret;
	}
	return scimg_int_err(ctx, -ENOTSUP, "'%s': resizing format '%s' is not supported (raw and qcow2 are)",
			     path, f);
}

int scimg_image_set_backing(struct scimg_ctx *ctx, const char *path, const char *format,
			    const char *backing, const char *backing_fmt)
{
	const char *f;
	int fd = -1, ret;

	scimg_ctx_clear_error(ctx);
	if ((ret = edit_format(ctx, path, format, &f)) < 0)
		return ret;
	if (strcmp(f, "qcow2"))
		return scimg_int_err(ctx, -ENOTSUP, "'%s': format '%s' has no backing file to change (qcow2 has)",
				     path, f);
	if (backing && !*backing)
		backing = NULL;
	if (backing_fmt && !*backing_fmt)
		backing_fmt = NULL;
	if (backing_fmt && !scimg_int_format_find(backing_fmt))
		return scimg_int_err_unknown_format(ctx, backing_fmt);
	if ((ret = open_rw(ctx, path, &fd)) < 0)
		return ret;
	ret = scimg_int_qcow2_set_backing(ctx, fd, path, backing, backing_fmt);
	close(fd);
	return ret;
}

int scimg_image_rebase(struct scimg_ctx *ctx, const char *path, const char *format,
		       const char *backing, const char *backing_fmt, uint64_t *copied)
{
	struct scimg_image *old = NULL, *nb = NULL;
	struct stat st, fst;
	const char *f;
	char *bpath = NULL;
	uint64_t n = 0;
	int fd = -1, ret;

	scimg_ctx_clear_error(ctx);
	if (copied)
		*copied = 0;
	if ((ret = edit_format(ctx, path, format, &f)) < 0)
		return ret;
	if (strcmp(f, "qcow2"))
		return scimg_int_err(ctx, -ENOTSUP, "'%s': format '%s' has no backing file to change (qcow2 has)",
				     path, f);
	if (backing && !*backing)
		backing = NULL;
	if (backing_fmt && !*backing_fmt)
		backing_fmt = NULL;
	if (backing_fmt && !backing)
		return scimg_int_err(ctx, -EINVAL, "a backing format needs a backing file");
	if (backing && !backing_fmt)
		/* qemu-img 7.2: "backing format must be specified" */
		return scimg_int_err(ctx, -EINVAL,
				     "could not change the backing file to '%s': the backing format must be specified (-F), as with qemu-img",
				     backing);
	if (backing_fmt && !scimg_int_format_find(backing_fmt))
		return scimg_int_err_unknown_format(ctx, backing_fmt);
	if (backing && scimg_int_name_is_url(backing))
		return scimg_int_err(ctx, -ENOTSUP, "new backing file '%s': a URL is not supported (name a local file)",
				     backing);
	/* the image with its old chain, as the context's flags allow */
	if ((ret = scimg_image_open(ctx, path, "qcow2", &old)) < 0)
		goto out;
	if (stat(path, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	if (backing) {
		/* named by the user: relative to the image's directory, as it
		 * will be resolved once stored */
		bpath = scimg_int_info_join(path, backing);
		if (!bpath) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto out;
		}
		if ((ret = scimg_image_open(ctx, bpath, backing_fmt, &nb)) < 0) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%s", scimg_ctx_errmsg(ctx));
			ret = scimg_int_err(ctx, ret, "could not open new backing file '%s': %s", bpath, msg);
			goto out;
		}
		if (scimg_int_image_uses_file(nb, st.st_dev, st.st_ino)) {
			ret = scimg_int_err(ctx, -ELOOP, "'%s' is the new backing file '%s' or a file of its chain; the image is unchanged",
					    path, bpath);
			goto out;
		}
	}
	if ((ret = open_rw(ctx, path, &fd)) < 0)
		goto out;
	if (fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
		ret = scimg_int_err(ctx, -EAGAIN, "'%s' changed while it was being opened", path);
		goto out;
	}
	ret = scimg_int_qcow2_rebase(ctx, fd, path, old, nb, backing, backing_fmt, &n);
	if (copied)
		*copied = n;
out:
	if (fd >= 0)
		close(fd);
	scimg_image_close(nb);
	scimg_image_close(old);
	free(bpath);
	return ret;
}
