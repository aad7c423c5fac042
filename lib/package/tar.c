/* package/tar.c - the tar container layer: the Supercloud image's tar
 * through libarchive (listing members with their data offsets to use them
 * in place, refusing unsafe members, checking the v1 layout, writing), and
 * the ustar header fields for the writers and probes that handle one
 * header themselves (ami, ova, gce-tar, sci's probe, check).
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "package.h"

/* ---- reading ---------------------------------------------------------- */

#define READ_BLOCK (64u << 10)

la_ssize_t scimg_int_arc_feed_read(struct archive *a, void *opaque, const void **out)
{
	struct scimg_arc_feed *r = opaque;
	size_t n = r->block;
	int ret;

	(void)a;
	*out = r->buf;
	if (r->pos >= r->src->size)
		return 0;
	if (r->src->size - r->pos < n)
		n = (size_t)(r->src->size - r->pos);
	ret = scimg_int_source_read(r->src, r->buf, n, r->pos, r->what);
	if (ret < 0) {
		if (!r->err)
			r->err = ret;
		return -1;
	}
	r->pos += n;
	return (la_ssize_t)n;
}

la_int64_t scimg_int_arc_feed_skip(struct archive *a, void *opaque, la_int64_t req)
{
	struct scimg_arc_feed *r = opaque;
	uint64_t left = r->src->size - r->pos;

	(void)a;
	if (req <= 0)
		return 0;
	/* skip whole blocks only, as libarchive expects */
	if ((uint64_t)req > left)
		req = (la_int64_t)left;
	req -= req % 512;
	r->pos += (uint64_t)req;
	return req;
}

static int name_is_unsafe(const char *name)
{
	const char *s = name;

	if (!*name || *name == '/')
		return 1;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 2 && s[0] == '.' && s[1] == '.')
			return 1;
		s += l;
		while (*s == '/')
			s++;
	}
	return 0;
}

static const char *type_name(mode_t t)
{
	switch (t) {
	case AE_IFREG: return "regular file";
	case AE_IFDIR: return "directory";
	case AE_IFLNK: return "symbolic link";
	case AE_IFCHR: return "character device";
	case AE_IFBLK: return "block device";
	case AE_IFIFO: return "FIFO";
	case AE_IFSOCK: return "socket";
	default: return "unknown type";
	}
}

int scimg_int_tar_list(struct scimg_source *src, struct sci_tar *out)
{
	struct scimg_ctx *ctx = src->ctx;
	struct archive *a = NULL;
	struct archive_entry *e;
	struct scimg_arc_feed r = { .src = src, .block = READ_BLOCK, .what = "tar data" };
	struct sci_tar t = { 0 };
	int ret, ar;

	memset(out, 0, sizeof(*out));
	r.buf = malloc(READ_BLOCK);
	a = archive_read_new();
	if (!r.buf || !a) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	archive_read_support_format_tar(a);
	archive_read_set_read_callback(a, scimg_int_arc_feed_read);
	archive_read_set_skip_callback(a, scimg_int_arc_feed_skip);
	archive_read_set_callback_data(a, &r);
	if (archive_read_open1(a) != ARCHIVE_OK) {
		ret = r.err ? r.err : scimg_int_err(ctx, -EINVAL, "'%s': not a tar file: %s",
						    src->name, archive_error_string(a));
		goto fail;
	}
	for (;;) {
		const char *name;
		la_int64_t off;
		struct sci_member *m;
		uint64_t size, end;

		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			/* a warning (e.g. odd header) is an error here too */
			ret = r.err ? r.err : scimg_int_err(ctx, -EINVAL,
							    "'%s': tar header after member %zu: %s",
							    src->name, t.n,
							    archive_error_string(a) ? archive_error_string(a) : "unreadable");
			goto fail;
		}
		name = archive_entry_pathname(e);
		off = archive_filter_bytes(a, -1);
		if (!name)
			name = "";
		if (name_is_unsafe(name)) {
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s': refusing tar member %zu named '%s' (absolute or with '..')",
					    src->name, t.n, name);
			goto fail;
		}
		if (archive_entry_hardlink(e)) {
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s': refusing tar member '%s': a hard link to '%s'",
					    src->name, name, archive_entry_hardlink(e));
			goto fail;
		}
		if (archive_entry_filetype(e) != AE_IFREG) {
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s': refusing tar member '%s': a %s, expected a regular file",
					    src->name, name, type_name(archive_entry_filetype(e)));
			goto fail;
		}
		if (archive_entry_sparse_count(e) > 0) {
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s': refusing tar member '%s': a sparse member cannot be used in place",
					    src->name, name);
			goto fail;
		}
		if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
			ret = scimg_int_err(ctx, -EINVAL, "'%s': tar member '%s' has no size",
					    src->name, name);
			goto fail;
		}
		size = (uint64_t)archive_entry_size(e);
		if (off < 0 || (uint64_t)off % 512 ||
		    !scimg_add_ok((uint64_t)off, size, &end) || end > src->size) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': tar member '%s' data at offset %lld (%llu bytes) is not 512-byte aligned or lies past the end of the file (%llu bytes)",
					    src->name, name, (long long)off,
					    (unsigned long long)size,
					    (unsigned long long)src->size);
			goto fail;
		}
		if (t.n >= SCI_MAX_MEMBERS) {
			ret = scimg_int_err(ctx, -EINVAL, "'%s': more than %d tar members",
					    src->name, SCI_MAX_MEMBERS);
			goto fail;
		}
		m = realloc(t.m, (t.n + 1) * sizeof(*t.m));
		if (!m) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		t.m = m;
		m = &t.m[t.n];
		m->name = strdup(name);
		if (!m->name) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto fail;
		}
		m->offset = (uint64_t)off;
		m->size = size;
		t.n++;
		if ((ret = scimg_int_check_cancel(ctx)) < 0)
			goto fail;
		if (archive_read_data_skip(a) != ARCHIVE_OK) {
			ret = r.err ? r.err : scimg_int_err(ctx, -EINVAL,
							    "'%s': tar member '%s' is truncated: %s",
							    src->name, name, archive_error_string(a));
			goto fail;
		}
	}
	if (t.n == 0) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': the tar file has no members", src->name);
		goto fail;
	}
	{
		/* the two zero blocks that end a tar must be there: a file cut
		 * short after its last member is truncated, not complete */
		uint64_t end = t.m[t.n - 1].offset + (t.m[t.n - 1].size + 511) / 512 * 512;
		if (src->size < end + 1024) {
			ret = scimg_int_err(ctx, -EINVAL,
					    "'%s': the tar file ends at %llu without the two zero blocks that close it (expected at least %llu bytes)",
					    src->name, (unsigned long long)src->size,
					    (unsigned long long)(end + 1024));
			goto fail;
		}
		for (uint64_t o = end; o < end + 1024; o += 512) {
			uint8_t z[512];
			if ((ret = scimg_int_source_read(src, z, sizeof(z), o, "end of archive")) < 0)
				goto fail;
			if (!scimg_int_is_zero(z, sizeof(z))) {
				ret = scimg_int_err(ctx, -EINVAL,
						    "'%s': block at offset %llu after the last member is not zero",
						    src->name, (unsigned long long)o);
				goto fail;
			}
		}
	}
	archive_read_free(a);
	free(r.buf);
	*out = t;
	return 0;
fail:
	if (a)
		archive_read_free(a);
	free(r.buf);
	scimg_int_tar_free(&t);
	return ret;
}

void scimg_int_tar_free(struct sci_tar *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->m[i].name);
	free(t->m);
	t->m = NULL;
	t->n = 0;
}

const struct sci_member *scimg_int_tar_find(const struct sci_tar *t,
					    const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->m[i].name, name) == 0)
			return &t->m[i];
	return NULL;
}

/* diskN.qcow2 / diskN.raw with N = 0..15 without leading zeros: N or -1 */
static int disk_index(const char *name)
{
	const char *p;
	int n = 0;

	if (strncmp(name, "disk", 4) != 0)
		return -1;
	p = name + 4;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (*p - '0');
		if (n >= SCI_MAX_DISKS)
			return -1;
		p++;
	}
	if (strcmp(p, ".qcow2") != 0 && strcmp(p, ".raw") != 0)
		return -1;
	return n;
}

int scimg_int_sci_layout(struct scimg_ctx *ctx, const char *what,
			 const struct sci_tar *t)
{
	size_t i = 0, j;
	int want = 0;

	for (i = 0; i < t->n; i++)
		for (j = 0; j < i; j++)
			if (strcmp(t->m[i].name, t->m[j].name) == 0)
				return scimg_int_err(ctx, -EINVAL,
						     "'%s': tar member '%s' appears twice (members %zu and %zu)",
						     what, t->m[i].name, j, i);
	i = 0;
	if (strcmp(t->m[0].name, SCI_DESCRIPTOR) != 0)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': first tar member is '%s', expected '%s'",
				     what, t->m[0].name, SCI_DESCRIPTOR);
	for (i = 1; i < t->n; i++) {
		int d = disk_index(t->m[i].name);
		if (d < 0)
			break;
		if (d != want)
			return scimg_int_err(ctx, -EINVAL,
					     "'%s': tar member %zu is '%s', expected disk number %d",
					     what, i, t->m[i].name, want);
		want++;
	}
	if (want == 0)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': tar member 1 is '%s', expected the disk 'disk0.qcow2'",
				     what, i < t->n ? t->m[i].name : "(end of archive)");
	if (i >= t->n || strcmp(t->m[i].name, SCI_XLCFG) != 0)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': tar member %zu is '%s', expected '%s' after the disks",
				     what, i, i < t->n ? t->m[i].name : "(end of archive)",
				     SCI_XLCFG);
	i++;
	if (i < t->n && strcmp(t->m[i].name, SCI_SIGNATURE) == 0)
		i++;
	if (i < t->n)
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': unexpected tar member %zu '%s' (an SCI v1 ends with '%s' and the optional '%s')",
				     what, i, t->m[i].name, SCI_XLCFG, SCI_SIGNATURE);
	return 0;
}

int scimg_int_member_read(struct scimg_source *src, const struct sci_member *m,
			  char **buf)
{
	char *b;
	int ret;

	*buf = NULL;
	if (m->size > SCI_MAX_SMALL_MEMBER)
		return scimg_int_err(src->ctx, -EFBIG,
				     "'%s': tar member '%s' is %llu bytes, more than the %u allowed",
				     src->name, m->name, (unsigned long long)m->size,
				     SCI_MAX_SMALL_MEMBER);
	b = malloc((size_t)m->size + 1);
	if (!b)
		return scimg_int_err(src->ctx, -ENOMEM, "out of memory");
	ret = scimg_int_source_read(src, b, (size_t)m->size, m->offset, m->name);
	if (ret < 0) {
		free(b);
		return ret;
	}
	b[m->size] = '\0';
	*buf = b;
	return 0;
}

/* ---- writing ---------------------------------------------------------- */

struct sci_tar_writer {
	struct scimg_ctx *ctx;
	struct archive *a;
	const char *path;
	time_t mtime;
	int fd;
	int err;
	int discard;  /* aborted: what libarchive still writes goes nowhere */
	uint64_t pos; /* bytes of tar written so far (holes included) */
};

static la_ssize_t wr_write(struct archive *a, void *opaque, const void *buf,
			   size_t len)
{
	struct sci_tar_writer *w = opaque;
	const uint8_t *p = buf;
	size_t left = len;

	(void)a;
	if (w->discard)
		return (la_ssize_t)len;
	/* 4 KiB blocks of zeros become holes (the file is made to its full
	 * length at the end), so a raw disk member stays sparse */
	while (left) {
		size_t blk = 4096 - (size_t)(w->pos % 4096);
		ssize_t n;

		if (blk > left)
			blk = left;
		if (blk == 4096 && scimg_int_is_zero(p, blk)) {
			p += blk;
			left -= blk;
			w->pos += blk;
			continue;
		}
		n = pwrite(w->fd, p, blk, (off_t)w->pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->err = scimg_int_err(w->ctx, -errno, "'%s': write error at offset %llu: %s",
					       w->path, (unsigned long long)w->pos, strerror(errno));
			return -1;
		}
		p += n;
		left -= (size_t)n;
		w->pos += (uint64_t)n;
	}
	return (la_ssize_t)len;
}

int scimg_int_tar_writer_new(struct scimg_ctx *ctx, int fd, const char *path,
			     time_t mtime, struct sci_tar_writer **out)
{
	struct sci_tar_writer *w;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->a = archive_write_new())) {
		free(w);
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	}
	w->ctx = ctx;
	w->fd = fd;
	w->path = path;
	w->mtime = mtime;
	/* ustar, pax extended headers only where ustar cannot hold a value */
	if (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(w->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->a, 64 * 512) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
	    archive_write_open(w->a, w, NULL, wr_write, NULL) != ARCHIVE_OK) {
		int ret = scimg_int_err(ctx, -EIO, "'%s': could not start the tar: %s",
					path, archive_error_string(w->a));
		archive_write_free(w->a);
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

static int add_header(struct sci_tar_writer *w, const char *name, uint64_t size)
{
	struct archive_entry *e = archive_entry_new();
	int ar;

	if (!e)
		return scimg_int_err(w->ctx, -ENOMEM, "out of memory");
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_uname(e, "root");
	archive_entry_set_gname(e, "root");
	archive_entry_set_mtime(e, w->mtime, 0);
	ar = archive_write_header(w->a, e);
	archive_entry_free(e);
	if (ar != ARCHIVE_OK)
		return w->err ? w->err
			      : scimg_int_err(w->ctx, -EIO, "'%s': tar member '%s': %s",
					      w->path, name, archive_error_string(w->a));
	return 0;
}

static int put_data(struct sci_tar_writer *w, const char *name, const void *p,
		    size_t len)
{
	const uint8_t *b = p;

	while (len) {
		la_ssize_t n = archive_write_data(w->a, b, len);
		if (n <= 0)
			return w->err ? w->err
				      : scimg_int_err(w->ctx, -EIO, "'%s': tar member '%s': %s",
						      w->path, name, archive_error_string(w->a));
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

int scimg_int_tar_add_buffer(struct sci_tar_writer *w, const char *name,
			     const void *data, size_t len)
{
	return scimg_int_tar_add_buffer_at(w, name, data, len, NULL);
}

int scimg_int_tar_add_buffer_at(struct sci_tar_writer *w, const char *name,
				const void *data, size_t len, uint64_t *data_off)
{
	int ret = add_header(w, name, len);

	if (ret < 0)
		return ret;
	/* the bytes handed to the (uncompressed) output so far: the
	 * member's header is all written, its data starts here */
	if (data_off)
		*data_off = (uint64_t)archive_filter_bytes(w->a, 0);
	return put_data(w, name, data, len);
}

int scimg_int_tar_add_file(struct sci_tar_writer *w, const char *name,
			   const char *file_path, uint64_t *size_out,
			   scimg_sha256_hex sha)
{
	const size_t bufsz = 1u << 20;
	uint8_t *buf = NULL, md[32];
	EVP_MD_CTX *mdc = NULL;
	uint64_t size, done = 0, synced = 0;
	off_t end;
	int fd, ret;

	fd = open(file_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return scimg_int_err(w->ctx, -errno, "could not open '%s': %s",
				     file_path, strerror(errno));
	end = lseek(fd, 0, SEEK_END);
	if (end < 0) {
		ret = scimg_int_err(w->ctx, -errno, "'%s': %s", file_path, strerror(errno));
		goto out;
	}
	size = (uint64_t)end;
	buf = malloc(bufsz);
	mdc = EVP_MD_CTX_new();
	if (!buf || !mdc || !EVP_DigestInit_ex(mdc, EVP_sha256(), NULL)) {
		ret = scimg_int_err(w->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((ret = add_header(w, name, size)) < 0)
		goto out;
	while (done < size) {
		size_t want = size - done < bufsz ? (size_t)(size - done) : bufsz;
		ssize_t n = pread(fd, buf, want, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = scimg_int_err(w->ctx, n < 0 ? -errno : -EIO,
					    "'%s': read error at offset %llu: %s", file_path,
					    (unsigned long long)done,
					    n < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		EVP_DigestUpdate(mdc, buf, (size_t)n);
		if ((ret = put_data(w, name, buf, (size_t)n)) < 0)
			goto out;
		done += (uint64_t)n;
		/* start writing back what is written (as convert does): the
		 * flush before the package's rename then finds little left */
		if (done - synced >= (UINT64_C(64) << 20) && !w->discard) {
			(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
			synced = done;
		}
		if ((ret = scimg_int_check_cancel(w->ctx)) < 0)
			goto out;
	}
	EVP_DigestFinal_ex(mdc, md, NULL);
	if (sha)
		scimg_int_sha256_hex(md, sha);
	if (size_out)
		*size_out = size;
	ret = 0;
out:
	EVP_MD_CTX_free(mdc);
	free(buf);
	close(fd);
	return ret;
}

int scimg_int_tar_writer_close(struct sci_tar_writer *w)
{
	int ret = 0;

	if (archive_write_close(w->a) != ARCHIVE_OK)
		ret = w->err ? w->err
			     : scimg_int_err(w->ctx, -EIO, "'%s': could not complete the tar: %s",
					     w->path, archive_error_string(w->a));
	if (ret == 0 && ftruncate(w->fd, (off_t)w->pos) < 0)
		ret = scimg_int_err(w->ctx, -errno, "'%s': could not set the size to %llu: %s",
				    w->path, (unsigned long long)w->pos, strerror(errno));
	archive_write_free(w->a);
	free(w);
	return ret;
}

void scimg_int_tar_writer_abort(struct sci_tar_writer *w)
{
	if (!w)
		return;
	/* close (which frees libarchive's block buffer; archive_write_fail()
	 * would leave it allocated) with nothing more written to the file */
	w->discard = 1;
	archive_write_free(w->a);
	free(w);
}

/* ---- ustar headers ------------------------------------------------------ */

void scimg_int_ustar_num(uint8_t *f, size_t len, uint64_t v)
{
	size_t i;

	if (len < 2)
		return;
	if (len - 1 >= 22 || v < (UINT64_C(1) << (3 * (len - 1)))) {
		snprintf((char *)f, len, "%0*llo", (int)(len - 1), (unsigned long long)v);
		return;
	}
	memset(f, 0, len);
	f[0] = 0x80;
	for (i = len - 1; i > 0 && v; i--, v >>= 8)
		f[i] = (uint8_t)v;
}

void scimg_int_ustar_checksum(uint8_t h[USTAR_BLOCK])
{
	unsigned sum = 0;
	size_t i;

	memset(h + 148, ' ', 8);
	for (i = 0; i < USTAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

void scimg_int_ustar_header(uint8_t h[USTAR_BLOCK], const char *name, char type,
			    uint64_t size, uint64_t mtime, int oldgnu)
{
	size_t n = strlen(name);

	memset(h, 0, USTAR_BLOCK);
	memcpy(h, name, n < 100 ? n : 99);
	scimg_int_ustar_num(h + 100, 8, 0644);
	scimg_int_ustar_num(h + 108, 8, 0);
	scimg_int_ustar_num(h + 116, 8, 0);
	scimg_int_ustar_num(h + 124, 12, size);
	scimg_int_ustar_num(h + 136, 12, mtime);
	h[156] = (uint8_t)type;
	if (oldgnu) {
		memcpy(h + 257, "ustar  ", 8);
	} else {
		memcpy(h + 257, "ustar", 6);
		memcpy(h + 263, "00", 2);
	}
	memcpy(h + 265, "root", 4);
	memcpy(h + 297, "root", 4);
	if (!oldgnu) {
		scimg_int_ustar_num(h + 329, 8, 0);
		scimg_int_ustar_num(h + 337, 8, 0);
	}
	scimg_int_ustar_checksum(h);
}

int scimg_int_ustar_magic(const uint8_t h[USTAR_BLOCK])
{
	return memcmp(h + 257, "ustar", 5) == 0;
}

int scimg_int_ustar_ok(const uint8_t h[USTAR_BLOCK])
{
	unsigned usum = 0, want = 0;
	int ssum = 0, i, digits = 0;

	if (!scimg_int_ustar_magic(h))
		return 0;
	for (i = 0; i < USTAR_BLOCK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
		usum += c;
		ssum += (signed char)c;
	}
	for (i = 148; i < 156 && h[i] == ' '; i++)
		;
	for (; i < 156 && h[i] >= '0' && h[i] <= '7'; i++, digits++)
		want = want * 8 + (unsigned)(h[i] - '0');
	return digits > 0 && (usum == want || (unsigned)ssum == want);
}

uint64_t scimg_int_ustar_size(const uint8_t h[USTAR_BLOCK])
{
	uint64_t v = 0;
	int i;

	if (h[124] == 0x80) {
		/* base-256: the value must fit 64 bits */
		for (i = 125; i < 128; i++)
			if (h[i])
				return UINT64_MAX;
		for (i = 128; i < 136; i++)
			v = v << 8 | h[i];
		return v;
	}
	for (i = 124; i < 136 && h[i] == ' '; i++)
		;
	if (i == 136 || h[i] < '0' || h[i] > '7')
		return UINT64_MAX;
	for (; i < 136 && h[i] >= '0' && h[i] <= '7'; i++)
		v = v * 8 + (uint64_t)(h[i] - '0');
	if (i < 136 && h[i] != ' ' && h[i] != '\0')
		return UINT64_MAX;
	return v;
}

void scimg_int_ustar_pax_size(uint8_t out[2 * USTAR_BLOCK], const char *name, uint64_t size,
			      uint64_t mtime)
{
	char rec[64], pname[128];
	int len = 0, l;

	/* "LEN size=N\n" where LEN counts itself */
	for (l = 10; l < 40; l++) {
		len = snprintf(rec, sizeof(rec), "%d size=%llu\n", l, (unsigned long long)size);
		if (len == l)
			break;
	}
	snprintf(pname, sizeof(pname), "PaxHeaders/%.80s", name);
	scimg_int_ustar_header(out, pname, 'x', (uint64_t)len, mtime, 0);
	memset(out + USTAR_BLOCK, 0, USTAR_BLOCK);
	memcpy(out + USTAR_BLOCK, rec, (size_t)len);
}
