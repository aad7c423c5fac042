/* check/initrd.c - list the kernel modules inside an initramfs file.
 *
 * An initramfs is a sequence of cpio "newc" archives with zero padding
 * between them, each either plain (an early archive with CPU microcode is
 * common) or inside a compressed stream; one compressed stream may itself
 * hold several archives (concatenated gzip members, as CoreOS appends its
 * config).  Everything is read through libarchive: its cpio reader parses
 * each archive and its filters decompress (gzip, zstd, xz, lzma, lz4 --
 * Ubuntu's default --, bzip2, lzo).  libarchive reads one archive at a
 * time, so the sequence is walked here: a plain archive ends where the
 * cpio reader stopped consuming (archive_filter_bytes), then padding is
 * skipped and the next archive or compressed stream starts; inside a
 * compressed stream the same walk runs over the decompressed bytes (one
 * libarchive reader decompresses, a second parses each archive from it).
 * A compressed stream runs to the end of the file (libarchive does not say
 * where it ended in the file; the kernel would go on after it, and no
 * initramfs tool writes anything there).  Memory stays bounded whatever
 * the size: two 256 KiB blocks and the set of module names.  Anything
 * that is not exactly this (a bad header, a truncated stream, data that is
 * neither cpio nor a stream libarchive decodes) is an error naming the
 * offset; libarchive's resynchronising past garbage (a warning) is an
 * error too.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-int.h"
#include "guest/guest.h"

#define BLK (256u << 10)
/* no real initramfs comes near this; a larger stream is a bomb */
#define MAX_STREAM (4ull << 30)

static int is_module(const char *name)
{
	size_t n = strlen(name);
	static const char *const sfx[] = { ".ko.zst", ".ko.xz", ".ko.gz", ".ko" };
	size_t i;

	for (i = 0; i < SCIMG_ARRAY_SIZE(sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strcmp(name + n - l, sfx[i]) == 0)
			return 1;
	}
	return 0;
}

/* The name of a stream's compression by its magic, for messages. */
static const char *comp_name(const uint8_t *p, size_t n)
{
	if (n >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return "gzip";
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (n >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6))
		return "xz";
	if (n >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		return "lzma";
	if (n >= 4 && (!memcmp(p, "\x02\x21\x4c\x18", 4) || !memcmp(p, "\x04\x22\x4d\x18", 4)))
		return "lz4";
	if (n >= 3 && !memcmp(p, "BZh", 3))
		return "bzip2";
	if (n >= 4 && !memcmp(p, "\x89LZO", 4))
		return "lzo";
	return NULL;
}

/* ---- a byte stream read in blocks: the file, or a decompressed stream -- */

struct stream {
	struct scimg_ctx *ctx;
	const char *path;
	/* the file (when a == NULL) */
	int fd;
	uint64_t fpos, fsize;
	/* or a decompressor reading the file from offset zoff */
	struct archive *a;
	const char *zname;
	uint64_t zoff;
	/* the current block: blk[boff..blen) not yet handed out */
	uint8_t *blk;
	size_t blen, boff;
	uint64_t bstart; /* stream offset of blk[0] */
	int err;         /* a -errno already reported on ctx */
};

static int stream_fill(struct stream *s)
{
	if (s->boff < s->blen || s->err)
		return s->err;
	s->bstart += s->blen;
	s->blen = s->boff = 0;
	if (!s->a) {
		ssize_t r;
		size_t want = BLK;
		if (s->fpos >= s->fsize)
			return 0;
		if (want > s->fsize - s->fpos)
			want = (size_t)(s->fsize - s->fpos);
		do
			r = pread(s->fd, s->blk, want, (off_t)s->fpos);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return s->err = scimg_int_err(s->ctx, -errno, "'%s': read error at offset %llu: %s",
						      s->path, (unsigned long long)s->fpos, strerror(errno));
		s->blen = (size_t)r;
		s->fpos += (uint64_t)r;
		if (r == 0) /* the file shrank under us */
			s->fsize = s->fpos;
	} else {
		la_ssize_t r = archive_read_data(s->a, s->blk, BLK);
		if (r < 0)
			return s->err = scimg_int_err(s->ctx, -EINVAL,
						      "'%s': %s stream at offset %llu is corrupt or truncated: %s",
						      s->path, s->zname, (unsigned long long)s->zoff,
						      archive_error_string(s->a) ? archive_error_string(s->a) : "?");
		s->blen = (size_t)r;
		if (s->bstart + s->blen > MAX_STREAM)
			return s->err = scimg_int_err(s->ctx, -EFBIG,
						      "'%s': %s stream at offset %llu decompresses to more than %llu GiB",
						      s->path, s->zname, (unsigned long long)s->zoff,
						      MAX_STREAM >> 30);
	}
	return scimg_int_check_cancel(s->ctx);
}

/* Skip zero padding.  Returns 1 at a non-zero byte, 0 at the end, -errno. */
static int stream_skip_zeros(struct stream *s)
{
	for (;;) {
		int r = stream_fill(s);
		if (r < 0)
			return r;
		if (s->boff == s->blen)
			return 0;
		while (s->boff < s->blen && s->blk[s->boff] == 0)
			s->boff++;
		if (s->boff < s->blen)
			return 1;
	}
}

/* Copy up to N bytes from the current position without consuming them. */
static size_t stream_peek(struct stream *s, uint8_t *p, size_t n)
{
	size_t have = s->blen - s->boff;

	if (have >= n || s->a) {
		if (n > have)
			n = have;
		memcpy(p, s->blk + s->boff, n);
		return n;
	}
	/* the file: read across the block end */
	{
		uint64_t at = s->bstart + s->boff;
		ssize_t r = pread(s->fd, p, n, (off_t)at);
		return r > 0 ? (size_t)r : 0;
	}
}

static uint64_t stream_tell(const struct stream *s)
{
	return s->bstart + s->boff;
}

/* libarchive read callback: hand out the rest of the current block. */
static la_ssize_t stream_read_cb(struct archive *a, void *opaque, const void **buf)
{
	struct stream *s = opaque;
	size_t n;

	(void)a;
	if (stream_fill(s) < 0)
		return -1;
	n = s->blen - s->boff;
	*buf = s->blk + s->boff;
	s->boff = s->blen;
	return (la_ssize_t)n;
}

/* libarchive read callback of a decompressor: the file from its offset. */
struct file_in {
	struct stream *file;
};

static la_ssize_t file_read_cb(struct archive *a, void *opaque, const void **buf)
{
	(void)a;
	return stream_read_cb(a, ((struct file_in *)opaque)->file, buf);
}

/* ---- one cpio archive --------------------------------------------------- */

/* libarchive's cpio reader trusts a header's name size: it reads the name
 * ahead in one piece, allocating whatever the header says (up to 4 GiB; a
 * small compressed file can then fill that much memory).  At a header that
 * is not all hex digits it skips ahead to the next thing that looks like
 * one (with a warning, after the damage).  And it keeps every entry with
 * more than one link in a list it searches linearly for each such entry.
 * So every block handed to it is first walked here, header to header (the
 * framing only: sizes, the trailer): a header that is not 110 hex digits
 * with the newc magic, a name size above CPIO_MAXNAME, more than
 * CPIO_MAXENTRIES entries or CPIO_MAXLINKED multiply-linked ones end the
 * read before libarchive sees that header.  Everything else about the
 * archive is libarchive's.  (Real initramfs: a few thousand entries, a
 * few hundred hard links at most.) */
#define CPIO_HDR 110
#define CPIO_MAXNAME 4096
#define CPIO_MAXENTRIES 1000000u
#define CPIO_MAXLINKED 20000u

struct guard {
	struct stream *s;
	uint64_t next;      /* stream offset of the next header */
	uint8_t hdr[CPIO_HDR + 11];
	size_t have;        /* bytes of hdr collected */
	int done;           /* the trailer was seen */
	unsigned entries, linked;
};

static int hex8(const uint8_t *p, uint64_t *v)
{
	uint64_t r = 0;
	int i;

	for (i = 0; i < 8; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		r = r * 16 + (uint64_t)d;
	}
	*v = r;
	return 0;
}

static int all_hex(const uint8_t *p)
{
	size_t i;

	for (i = 6; i < CPIO_HDR; i++) {
		uint64_t v;
		if ((i - 6) % 8 == 0 && hex8(p + i, &v) < 0)
			return 0;
	}
	return 1;
}

/* Walk the headers in the block P (N bytes at stream offset AT). */
static int guard_block(struct guard *g, const uint8_t *p, size_t n, uint64_t at)
{
	while (!g->done && g->next < at + n) {
		uint64_t namesize, filesize, nlink, want;
		size_t k;

		/* collect the header (and below, for a trailer-sized name, the
		 * name) */
		want = g->have >= CPIO_HDR ? sizeof(g->hdr) : CPIO_HDR;
		if (g->next + g->have < at)
			return scimg_int_err(g->s->ctx, -EIO, "'%s': cpio header walk out of step", g->s->path);
		k = (size_t)(g->next + g->have - at);
		while (g->have < want && k < n)
			g->hdr[g->have++] = p[k++];
		if (g->have < CPIO_HDR)
			return 0; /* the rest is in the next block */
		if ((memcmp(g->hdr, "070701", 6) && memcmp(g->hdr, "070702", 6)) || !all_hex(g->hdr))
			return scimg_int_err(g->s->ctx, -EINVAL,
					     "'%s': the cpio header at stream offset %llu is not a newc header",
					     g->s->path, (unsigned long long)g->next);
		(void)hex8(g->hdr + 38, &nlink);
		(void)hex8(g->hdr + 54, &filesize);
		(void)hex8(g->hdr + 94, &namesize);
		if (namesize == 0 || namesize > CPIO_MAXNAME)
			return scimg_int_err(g->s->ctx, -EINVAL,
					     "'%s': the cpio header at stream offset %llu has name size %llu (1 to %d)",
					     g->s->path, (unsigned long long)g->next,
					     (unsigned long long)namesize, CPIO_MAXNAME);
		if (++g->entries > CPIO_MAXENTRIES || (nlink > 1 && ++g->linked > CPIO_MAXLINKED))
			return scimg_int_err(g->s->ctx, -EINVAL,
					     "'%s': the cpio archive has more than %u entries or %u hard-linked ones",
					     g->s->path, CPIO_MAXENTRIES, CPIO_MAXLINKED);
		if (namesize == 11 && filesize == 0) {
			while (g->have < sizeof(g->hdr) && k < n)
				g->hdr[g->have++] = p[k++];
			if (g->have < sizeof(g->hdr))
				return 0; /* the rest of the name is in the next block */
			if (!memcmp(g->hdr + CPIO_HDR, "TRAILER!!!", 11)) {
				g->done = 1;
				return 0;
			}
		}
		g->next += (CPIO_HDR + namesize + 3) / 4 * 4 + (filesize + 3) / 4 * 4;
		g->have = 0;
	}
	return 0;
}

static la_ssize_t guarded_read_cb(struct archive *a, void *opaque, const void **buf)
{
	struct guard *g = opaque;
	uint64_t at;
	la_ssize_t n;

	at = g->s->bstart + g->s->boff;
	n = stream_read_cb(a, g->s, buf);
	if (n > 0 && guard_block(g, *buf, (size_t)n, at) < 0) {
		g->s->err = -EINVAL;
		return -1;
	}
	return n;
}

struct mods {
	json_object *seen; /* set of module names */
	json_object *list;
};

static void add_name(struct mods *m, const char *name)
{
	char mod[256];

	if (!name || !is_module(name))
		return;
	scimg_int_sg_modname(name, mod, sizeof(mod));
	if (json_object_object_get_ex(m->seen, mod, NULL))
		return;
	json_object_object_add(m->seen, mod, NULL);
	json_object_array_add(m->list, json_object_new_string(mod));
}

/* Parse the cpio archive at the stream's position; on success leave the
 * stream just after its trailer. */
static int read_archive(struct stream *s, struct mods *m)
{
	uint64_t start = stream_tell(s);
	struct guard g = { .s = s, .next = start };
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int ret = 0, r;
	char where[96];

	if (!a)
		return scimg_int_err(s->ctx, -ENOMEM, "out of memory");
	if (s->a)
		snprintf(where, sizeof(where), "at offset %llu of the %s stream at file offset %llu",
			 (unsigned long long)start, s->zname, (unsigned long long)s->zoff);
	else
		snprintf(where, sizeof(where), "at offset %llu", (unsigned long long)start);
	archive_read_support_format_cpio(a);
	r = archive_read_open(a, &g, NULL, guarded_read_cb, NULL);
	while (r == ARCHIVE_OK) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_OK)
			add_name(m, archive_entry_pathname(e));
	}
	if (s->err) {
		ret = s->err;
	} else if (r != ARCHIVE_EOF || !g.done) {
		ret = scimg_int_err(s->ctx, -EINVAL, "'%s': the cpio archive %s is corrupt or truncated: %s",
				    s->path, where, archive_error_string(a) ? archive_error_string(a)
									     : "it ends before its trailer or has a bad header");
	} else if (archive_format(a) != ARCHIVE_FORMAT_CPIO_SVR4_NOCRC &&
		   archive_format(a) != ARCHIVE_FORMAT_CPIO_SVR4_CRC) {
		ret = scimg_int_err(s->ctx, -EINVAL, "'%s': the archive %s is %s, not cpio newc",
				    s->path, where, archive_format_name(a) ? archive_format_name(a) : "empty");
	} else {
		/* where the reader stopped: just after the trailer's name */
		uint64_t end = start + (uint64_t)archive_filter_bytes(a, 0);
		if (end < s->bstart || end > s->bstart + s->blen)
			ret = scimg_int_err(s->ctx, -EIO, "'%s': lost the end of the cpio archive %s",
					    s->path, where);
		else
			s->boff = (size_t)(end - s->bstart);
	}
	archive_read_free(a);
	return ret;
}

/* ---- the sequence ------------------------------------------------------- */

/* Walk archives and padding in S to its end.  In a decompressed stream
 * every segment must be cpio. */
static int walk(struct stream *s, struct mods *m, uint8_t *zblk);

static int read_compressed(struct stream *file, struct mods *m, uint8_t *zblk)
{
	uint64_t at = stream_tell(file);
	uint8_t magic[8];
	size_t n = stream_peek(file, magic, sizeof(magic));
	const char *name = comp_name(magic, n);
	struct file_in fin = { file };
	struct stream z;
	struct archive *a;
	struct archive_entry *e;
	int ret;

	if (!name)
		return scimg_int_err(file->ctx, -ENOTSUP,
				     "'%s': the data at offset %llu is neither a cpio archive nor compressed in a way scimg reads",
				     file->path, (unsigned long long)at);
	a = archive_read_new();
	if (!a)
		return scimg_int_err(file->ctx, -ENOMEM, "out of memory");
	/* the compressions the kernel decompresses, and no others (no
	 * external programs for formats nobody puts in an initramfs) */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_lz4(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_lzop(a);
	archive_read_support_format_raw(a);
	memset(&z, 0, sizeof(z));
	z.ctx = file->ctx;
	z.path = file->path;
	z.fd = -1;
	z.a = a;
	z.zname = name;
	z.zoff = at;
	z.blk = zblk;
	if (archive_read_open(a, &fin, NULL, file_read_cb, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		ret = file->err ? file->err
				: scimg_int_err(file->ctx, -EINVAL, "'%s': %s stream at offset %llu is corrupt or truncated: %s",
						file->path, name, (unsigned long long)at,
						archive_error_string(a) ? archive_error_string(a) : "?");
	} else if (archive_filter_count(a) < 2) {
		ret = scimg_int_err(file->ctx, -ENOTSUP, "'%s': the %s stream at offset %llu cannot be decompressed here",
				    file->path, name, (unsigned long long)at);
	} else {
		ret = walk(&z, m, NULL);
		if (ret == 0 && file->err)
			ret = file->err;
	}
	archive_read_free(a);
	/* the stream ran to the end of the file */
	file->boff = file->blen;
	file->fpos = file->fsize;
	return ret;
}

static int walk(struct stream *s, struct mods *m, uint8_t *zblk)
{
	for (;;) {
		uint8_t magic[6];
		int r = stream_skip_zeros(s);
		if (r <= 0)
			return r;
		if (stream_peek(s, magic, sizeof(magic)) == sizeof(magic) &&
		    (!memcmp(magic, "070701", 6) || !memcmp(magic, "070702", 6))) {
			if ((r = read_archive(s, m)) < 0)
				return r;
		} else if (s->a) {
			return scimg_int_err(s->ctx, -EINVAL,
					     "'%s': the data at offset %llu of the %s stream at file offset %llu is not a cpio archive",
					     s->path, (unsigned long long)stream_tell(s), s->zname,
					     (unsigned long long)s->zoff);
		} else {
			return read_compressed(s, m, zblk);
		}
	}
}

int scimg_int_initrd_modules(struct scimg_ctx *ctx, const char *path,
			     json_object **mods)
{
	struct stream file;
	struct mods m = { NULL, NULL };
	struct stat st;
	uint8_t *zblk = NULL;
	int ret = 0;

	*mods = NULL;
	memset(&file, 0, sizeof(file));
	file.ctx = ctx;
	file.path = path;
	file.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (file.fd < 0)
		return scimg_int_err(ctx, -errno, "could not open '%s': %s", path, strerror(errno));
	if (fstat(file.fd, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': not a regular file", path);
		goto out;
	}
	file.fsize = (uint64_t)st.st_size;
	file.blk = malloc(BLK);
	zblk = malloc(BLK);
	m.seen = json_object_new_object();
	m.list = json_object_new_array();
	if (!file.blk || !zblk || !m.seen || !m.list) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if (stream_skip_zeros(&file) == 0 && file.err == 0) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': no cpio archive found", path);
		goto out;
	}
	if ((ret = file.err) < 0 || (ret = walk(&file, &m, zblk)) < 0)
		goto out;
	*mods = m.list;
	m.list = NULL;
out:
	json_object_put(m.seen);
	json_object_put(m.list);
	free(file.blk);
	free(zblk);
	close(file.fd);
	return ret;
}
