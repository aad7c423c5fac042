/* qcow2-edit.c - changes made to an existing qcow2 file in place (scimg
 * resize, scimg rebase -u).  Only the file given is opened for writing,
 * never a file of its chain.  The header is validated by the reader's
 * parser first; a change is refused when it would need allocation this
 * code does not do (resize: new refcount blocks; all: a larger refcount
 * table, shrinking). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/qcow2.h"

static int rd(struct scimg_ctx *ctx, int fd, const char *path, void *buf,
	      size_t len, uint64_t off, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return scimg_int_err(ctx, -errno, "'%s': reading the %s at offset %llu: %s",
					     path, what, (unsigned long long)(off + done), strerror(errno));
		if (n == 0)
			return scimg_int_err(ctx, -EINVAL, "'%s': the %s at offset %llu runs past the end of the file",
					     path, what, (unsigned long long)off);
		done += (size_t)n;
	}
	return 0;
}

static int wr(struct scimg_ctx *ctx, int fd, const char *path, const void *buf,
	      size_t len, uint64_t off, const char *what)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return scimg_int_err(ctx, n < 0 ? -errno : -EIO,
					     "'%s': writing the %s at offset %llu: %s", path, what,
					     (unsigned long long)(off + done),
					     n < 0 ? strerror(errno) : "short write");
		done += (size_t)n;
	}
	return 0;
}

static int sync_fd(struct scimg_ctx *ctx, int fd, const char *path)
{
	if (fdatasync(fd) < 0 && errno != EINVAL)
		return scimg_int_err(ctx, -errno, "'%s': could not flush: %s", path, strerror(errno));
	return 0;
}

/* Read and parse the header cluster of FD into *BUF (cluster size bytes,
 * or the whole file when it is shorter) and *H. */
static int load_header(struct scimg_ctx *ctx, int fd, const char *path,
		       uint8_t **buf, size_t *buflen, struct q2_header *h)
{
	uint8_t peek[Q2_PEEK_LEN];
	struct stat st;
	uint32_t cb;
	size_t n;
	int ret;

	*buf = NULL;
	memset(h, 0, sizeof(*h));
	if (fstat(fd, &st) < 0)
		return scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return scimg_int_err(ctx, -EINVAL, "'%s': not a regular file", path);
	if ((ret = rd(ctx, fd, path, peek, sizeof(peek), 0, "qcow2 header")) < 0)
		return ret;
	if (scimg_be32(peek) != Q2_MAGIC)
		return scimg_int_err(ctx, -EINVAL, "'%s': no qcow2 magic at offset 0", path);
	cb = scimg_be32(peek + 20);
	if (cb < Q2_MIN_CLUSTER_BITS || cb > Q2_MAX_CLUSTER_BITS)
		return scimg_int_err(ctx, -EINVAL, "'%s': qcow2 cluster_bits at offset 20 is %u, expected %u to %u",
				     path, cb, Q2_MIN_CLUSTER_BITS, Q2_MAX_CLUSTER_BITS);
	n = (size_t)1 << cb;
	if ((uint64_t)st.st_size < n)
		n = (size_t)st.st_size;
	*buf = calloc(1, (size_t)1 << cb);
	if (!*buf)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	*buflen = n;
	if ((ret = rd(ctx, fd, path, *buf, n, 0, "qcow2 header cluster")) < 0)
		return ret;
	ret = scimg_int_qcow2_parse_header(ctx, path, *buf, n, (uint64_t)st.st_size, h);
	if (ret < 0)
		return ret;
	if (h->incompat & (Q2_INCOMPAT_DIRTY | Q2_INCOMPAT_CORRUPT))
		return scimg_int_err(ctx, -EINVAL,
				     "'%s': qcow2 incompatible_features at offset 72 has the %s bit set; repair the image first (qemu-img check -r all)",
				     path, h->incompat & Q2_INCOMPAT_DIRTY ? "dirty" : "corrupt");
	return 0;
}

/* Refcount of host cluster C: read (SET 0) or, when it equals EXPECT, set
 * to VAL (SET 1).  Only a refcount block already in the table is used: -ENOTSUP
 * when none covers C. */
static int refcount_op(struct scimg_ctx *ctx, int fd, const char *path,
		       const struct q2_header *h, uint64_t file_size, uint64_t c,
		       int set, uint64_t expect, uint64_t val, uint64_t *out)
{
	unsigned order = h->refcount_order, rb_bits = h->cluster_bits + 3 - order;
	uint64_t r = c >> rb_bits, idx = c & ((UINT64_C(1) << rb_bits) - 1);
	uint64_t nreft = (uint64_t)h->refcount_table_clusters * h->cluster_size / 8;
	uint64_t blk, bytepos, cur;
	unsigned width, bits = 1u << order;
	uint8_t e8[8], b[8];
	int ret, i;

	if (r >= nreft)
		return scimg_int_err(ctx, -ENOTSUP, "'%s': cluster %llu lies past what the refcount table covers; growing the refcount table is not supported",
				     path, (unsigned long long)c);
	if ((ret = rd(ctx, fd, path, e8, 8, h->refcount_table_offset + r * 8, "refcount table entry")) < 0)
		return ret;
	blk = scimg_be64(e8) & Q2_REFT_OFFSET_MASK;
	if (!blk)
		return scimg_int_err(ctx, -ENOTSUP, "'%s': no refcount block covers cluster %llu; allocating refcount blocks is not supported",
				     path, (unsigned long long)c);
	if (blk % h->cluster_size || blk + h->cluster_size > file_size)
		return scimg_int_err(ctx, -EINVAL, "'%s': refcount table entry %llu: block offset %llu is not a cluster inside the file",
				     path, (unsigned long long)r, (unsigned long long)blk);
	bytepos = (idx * bits) / 8;
	width = bits >= 8 ? bits / 8 : 1;
	if ((ret = rd(ctx, fd, path, b, width, blk + bytepos, "refcount block")) < 0)
		return ret;
	if (bits < 8) {
		unsigned sh = (unsigned)((idx * bits) % 8);
		cur = (b[0] >> sh) & ((1u << bits) - 1);
		if (set) {
			if (cur != expect || val >= (1u << bits))
				goto mismatch;
			b[0] = (uint8_t)((b[0] & ~(((1u << bits) - 1) << sh)) | (val << sh));
		}
	} else {
		cur = 0;
		for (i = 0; i < (int)width; i++)
			cur = (cur << 8) | b[i];
		if (set) {
			if (cur != expect)
				goto mismatch;
			for (i = (int)width - 1; i >= 0; i--, val >>= 8)
				b[i] = (uint8_t)val;
		}
	}
	if (out)
		*out = cur;
	if (!set)
		return 0;
	return wr(ctx, fd, path, b, width, blk + bytepos, "refcount block");
mismatch:
	return scimg_int_err(ctx, -EINVAL, "'%s': refcount of cluster %llu is %llu, expected %llu; the image is unchanged",
			     path, (unsigned long long)c, (unsigned long long)cur, (unsigned long long)expect);
}

/* Move the L1 table (L1_SIZE entries) to new clusters at the end of the
 * file, sized for NEED entries, and point the header at it with SIZE; the
 * old table's clusters are freed afterwards (a crash in between leaks
 * them, which qemu-img check -r leaks repairs, and loses nothing). */
static int move_l1(struct scimg_ctx *ctx, int fd, const char *path,
		   const struct q2_header *h, uint64_t size, uint64_t need)
{
	uint64_t cs = h->cluster_size, nclu = (need * 8 + cs - 1) / cs, i, c0, cur;
	uint64_t oldc = ((uint64_t)h->l1_size * 8 + cs - 1) / cs;
	struct stat st;
	uint8_t *t = NULL, hdr[24];
	int ret;

	if (fstat(fd, &st) < 0)
		return scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
	c0 = ((uint64_t)st.st_size + cs - 1) / cs;
	/* every new cluster must have a refcount block already, and be free */
	for (i = 0; i < nclu; i++) {
		if ((ret = refcount_op(ctx, fd, path, h, (uint64_t)st.st_size, c0 + i, 0, 0, 0, &cur)) < 0)
			return ret;
		if (cur)
			return scimg_int_err(ctx, -EINVAL, "'%s': cluster %llu past the end of the file has refcount %llu, expected 0",
					     path, (unsigned long long)(c0 + i), (unsigned long long)cur);
	}
	t = calloc(1, (size_t)(nclu * cs));
	if (!t)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	if (h->l1_size && (ret = rd(ctx, fd, path, t, (size_t)h->l1_size * 8,
				    h->l1_table_offset, "L1 table")) < 0)
		goto out;
	if ((ret = wr(ctx, fd, path, t, (size_t)(nclu * cs), c0 * cs, "new L1 table")) < 0 ||
	    (ret = sync_fd(ctx, fd, path)) < 0)
		goto out;
	for (i = 0; i < nclu; i++)
		if ((ret = refcount_op(ctx, fd, path, h, (c0 + nclu) * cs, c0 + i, 1, 0, 1, NULL)) < 0)
			goto out;
	if ((ret = sync_fd(ctx, fd, path)) < 0)
		goto out;
	/* size (24), crypt_method (32), l1_size (36), l1_table_offset (40) */
	if ((ret = rd(ctx, fd, path, hdr, sizeof(hdr), 24, "qcow2 header")) < 0)
		goto out;
	scimg_put_be64(hdr, size);
	scimg_put_be32(hdr + 12, (uint32_t)need);
	scimg_put_be64(hdr + 16, c0 * cs);
	if ((ret = wr(ctx, fd, path, hdr, sizeof(hdr), 24, "qcow2 header")) < 0 ||
	    (ret = sync_fd(ctx, fd, path)) < 0)
		goto out;
	/* free the old table */
	for (i = 0; h->l1_size && i < oldc; i++) {
		uint64_t c = h->l1_table_offset / cs + i;
		if ((ret = refcount_op(ctx, fd, path, h, (c0 + nclu) * cs, c, 0, 0, 0, &cur)) < 0)
			goto out;
		if (cur && (ret = refcount_op(ctx, fd, path, h, (c0 + nclu) * cs, c, 1, cur, cur - 1, NULL)) < 0)
			goto out;
	}
	ret = sync_fd(ctx, fd, path);
out:
	free(t);
	return ret;
}

int scimg_int_qcow2_resize(struct scimg_ctx *ctx, int fd, const char *path,
			   uint64_t size, uint64_t backing_size, int shrink)
{
	struct q2_header h;
	uint8_t *buf = NULL, *zero = NULL, hdr[16];
	size_t buflen;
	uint64_t cs, per_l2, need, l1_room;
	int ret;

	(void)shrink;
	ret = load_header(ctx, fd, path, &buf, &buflen, &h);
	if (ret < 0)
		goto out;
	cs = h.cluster_size;
	if (size % 512) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': new size %llu: a qcow2 size must be a multiple of 512",
				    path, (unsigned long long)size);
		goto out;
	}
	if (size == h.size)
		goto out;
	if (size < h.size) {
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "'%s': shrinking a qcow2 image is not supported (the clusters past the new end would have to be freed); convert the first %llu bytes instead",
				    path, (unsigned long long)size);
		goto out;
	}
	if (h.nb_snapshots) {
		ret = scimg_int_err(ctx, -ENOTSUP, "'%s': the image has %u internal snapshots; resizing it is not supported",
				    path, h.nb_snapshots);
		goto out;
	}
	if (h.nb_bitmaps || (h.autoclear & Q2_AUTOCLEAR_BITMAPS)) {
		ret = scimg_int_err(ctx, -ENOTSUP, "'%s': the image has persistent dirty bitmaps; resizing it is not supported",
				    path);
		goto out;
	}
	if (h.data_file) {
		ret = scimg_int_err(ctx, -ENOTSUP, "'%s': the image has an external data file ('%s'); resizing it is not supported",
				    path, h.data_file);
		goto out;
	}
	if (backing_size > h.size) {
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "'%s': the backing file is larger (%llu bytes) than the image (%llu): growing would show its data past the old end; not supported",
				    path, (unsigned long long)backing_size, (unsigned long long)h.size);
		goto out;
	}
	if (size > SCIMG_MAX_VIRTUAL_SIZE) {
		ret = scimg_int_err(ctx, -EFBIG, "'%s': new size %llu is too large", path,
				    (unsigned long long)size);
		goto out;
	}
	if (h.size % cs) {
		/* the rest of the last cluster becomes guest-visible: it must
		 * read as zeros (qemu and scimg write whole clusters padded
		 * with zeros; an unallocated one reads as zeros without a
		 * backing file reaching it) */
		uint64_t g = h.size / cs, l1i = g >> h.l2_bits, l1e = 0, l2e = 0, host;
		uint64_t esize = h.extended_l2 ? 16 : 8, in = h.size % cs;
		uint8_t e8[8];

		if (h.extended_l2) {
			ret = scimg_int_err(ctx, -ENOTSUP,
					    "'%s': growing an image with extended L2 entries whose size is not a multiple of the cluster size is not supported",
					    path);
			goto out;
		}
		if (l1i < h.l1_size) {
			if ((ret = rd(ctx, fd, path, e8, 8, h.l1_table_offset + l1i * 8, "L1 entry")) < 0)
				goto out;
			l1e = scimg_be64(e8) & Q2_L1E_OFFSET_MASK;
		}
		if (l1e) {
			uint64_t idx = g & ((UINT64_C(1) << h.l2_bits) - 1);
			if ((ret = rd(ctx, fd, path, e8, 8, l1e + idx * esize, "L2 entry")) < 0)
				goto out;
			l2e = scimg_be64(e8);
		}
		host = l2e & Q2_L2E_OFFSET_MASK;
		if (!(l2e & Q2_OFLAG_COMPRESSED) && !(l2e & Q2_OFLAG_ZERO) && host) {
			uint8_t *tail = malloc((size_t)(cs - in));
			if (!tail) {
				ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
				goto out;
			}
			ret = rd(ctx, fd, path, tail, (size_t)(cs - in), host + in, "last data cluster");
			if (ret == 0 && !scimg_int_is_zero(tail, (size_t)(cs - in)))
				ret = scimg_int_err(ctx, -ENOTSUP,
						    "'%s': the last cluster (host offset %llu) holds non-zero bytes past the old size; growing would expose them",
						    path, (unsigned long long)host);
			free(tail);
			if (ret < 0)
				goto out;
		}
	}
	per_l2 = cs << h.l2_bits;
	need = size / per_l2 + (size % per_l2 != 0);
	l1_room = (((uint64_t)h.l1_size * 8 + cs - 1) / cs) * cs / 8;
	if (need > h.l1_size) {
		if (need * 8 > Q2_MAX_L1_BYTES) {
			ret = scimg_int_err(ctx, -EFBIG,
					    "'%s': the new size needs %llu L1 entries, more than qcow2's 32 MiB L1 table holds with %llu-byte clusters",
					    path, (unsigned long long)need, (unsigned long long)cs);
			goto out;
		}
		if (need > l1_room) {
			ret = move_l1(ctx, fd, path, &h, size, need);
			goto out;
		}
		/* the rest of the L1 table's last cluster belongs to it: make
		 * sure the new entries read as unallocated */
		zero = calloc(1, (size_t)(need - h.l1_size) * 8);
		if (!zero) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto out;
		}
		ret = wr(ctx, fd, path, zero, (size_t)(need - h.l1_size) * 8,
			 h.l1_table_offset + (uint64_t)h.l1_size * 8, "new L1 entries");
		if (ret < 0 || (ret = sync_fd(ctx, fd, path)) < 0)
			goto out;
	} else {
		need = h.l1_size;
	}
	/* size (offset 24), crypt_method (32), l1_size (36): one write */
	memcpy(hdr, buf + 24, 16);
	scimg_put_be64(hdr, size);
	scimg_put_be32(hdr + 12, (uint32_t)need);
	ret = wr(ctx, fd, path, hdr, sizeof(hdr), 24, "qcow2 header");
	if (ret == 0)
		ret = sync_fd(ctx, fd, path);
out:
	free(zero);
	free(buf);
	scimg_int_qcow2_header_free(&h);
	return ret;
}

int scimg_int_qcow2_set_backing(struct scimg_ctx *ctx, int fd, const char *path,
				const char *backing, const char *backing_fmt)
{
	struct q2_header h;
	uint8_t *buf = NULL, *nb = NULL;
	size_t buflen, hl, o, old_end, in, blen = backing ? strlen(backing) : 0;
	size_t flen = backing_fmt ? strlen(backing_fmt) : 0;
	int ret;

	if (blen > Q2_MAX_BACKING_NAME)
		return scimg_int_err(ctx, -ENAMETOOLONG, "backing file name: longer than %d bytes",
				     Q2_MAX_BACKING_NAME);
	if (flen > 15)
		return scimg_int_err(ctx, -EINVAL, "backing format '%s': expected a format name", backing_fmt);
	if (flen && !blen)
		return scimg_int_err(ctx, -EINVAL, "a backing format needs a backing file");
	ret = load_header(ctx, fd, path, &buf, &buflen, &h);
	if (ret < 0)
		goto out;
	if (h.data_file && blen && (h.autoclear & Q2_AUTOCLEAR_DATA_FILE_RAW)) {
		ret = scimg_int_err(ctx, -EINVAL, "'%s': an image with a raw external data file cannot have a backing file",
				    path);
		goto out;
	}
	nb = calloc(1, (size_t)h.cluster_size);
	if (!nb) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	hl = h.header_length;
	memcpy(nb, buf, hl);
	o = hl;
	/* keep every extension but the backing format */
	in = hl;
	while (in + 8 <= h.ext_end) {
		uint32_t type = scimg_be32(buf + in), len = scimg_be32(buf + in + 4);
		size_t tot = 8 + (((size_t)len + 7) & ~(size_t)7);

		if (type == Q2_EXT_END)
			break;
		if (type != Q2_EXT_BACKING_FORMAT) {
			if (o + tot > h.cluster_size)
				break; /* checked below */
			memcpy(nb + o, buf + in, tot);
			o += tot;
		}
		in += tot;
	}
	old_end = in + 8;
	if (h.backing_file_offset)
		old_end = h.backing_file_offset + h.backing_file_size;
	if (flen) {
		if (o + 8 + ((flen + 7) & ~(size_t)7) <= h.cluster_size) {
			scimg_put_be32(nb + o, Q2_EXT_BACKING_FORMAT);
			scimg_put_be32(nb + o + 4, (uint32_t)flen);
			memcpy(nb + o + 8, backing_fmt, flen);
		}
		o += 8 + ((flen + 7) & ~(size_t)7);
	}
	o += 8; /* end marker */
	if (o + blen > h.cluster_size || o + blen > buflen) {
		ret = scimg_int_err(ctx, -ENOSPC,
				    "'%s': the header, its extensions and the backing file name need %zu bytes, more than the first cluster (%llu bytes); the image is unchanged",
				    path, o + blen, (unsigned long long)h.cluster_size);
		goto out;
	}
	if (blen) {
		memcpy(nb + o, backing, blen);
		scimg_put_be64(nb + 8, o);
		scimg_put_be32(nb + 16, (uint32_t)blen);
	} else {
		scimg_put_be64(nb + 8, 0);
		scimg_put_be32(nb + 16, 0);
	}
	/* one write of the header area (old or new extent, whichever is
	 * longer; the old tail is zeroed) */
	if (o + blen > old_end)
		old_end = o + blen;
	ret = wr(ctx, fd, path, nb, old_end, 0, "qcow2 header");
	if (ret == 0)
		ret = sync_fd(ctx, fd, path);
out:
	free(nb);
	free(buf);
	scimg_int_qcow2_header_free(&h);
	return ret;
}

/* ---- safe rebase (qemu-img rebase without -u) --------------------------
 *
 * Every guest cluster the image does not allocate itself, whose content
 * under the old chain (OLD, the image opened with its chain) differs from
 * what the new backing file (NB, NULL: none) reads there, gets the old
 * content in the image: a new data cluster appended at the end of the
 * file, or a zero cluster (version 3) where the old content is zeros.
 * Then the header names the new backing file.
 *
 * Order, so that an interruption leaves the image reading as before:
 * data clusters are written past the end of the file (nothing refers to
 * them); per L2 table, after a flush, the refcount blocks (new blocks
 * first, then the refcount table entries that point at them), a flush,
 * the L2 table (a new one in a new cluster), a flush, then the L1 entry;
 * every cluster an L2 entry gains holds what the old chain reads there, so
 * each state in between reads the same.  The header is rewritten last, in
 * one write.  An interruption can leave clusters with a refcount that
 * nothing refers to yet (leaks: qemu-img check -r leaks), never a loss.
 * Refused: internal snapshots or persistent bitmaps (the clusters would
 * be shared or the bitmaps stale), an external data file, extended L2
 * entries, an L2 table shared with anything (no COPIED flag), and a file
 * whose refcount table has no room for the new clusters. */

struct rbs {
	struct scimg_ctx *ctx;
	int fd;
	const char *path;
	const struct q2_header *h;
	uint64_t cs;
	unsigned order, rb_bits;
	uint64_t file_size;       /* as it was: offsets are checked against it */
	uint64_t next;            /* next free cluster */
	uint64_t committed;       /* first cluster past what is referenced */
	uint64_t nreft;
	uint64_t *reft;           /* host order */
	uint8_t *reft_new;        /* entry points at a block not yet in the file's table */
	uint8_t **rblk;           /* refcount blocks in memory */
	uint8_t *rblk_dirty;
	uint64_t *l1;             /* host order */
};

static uint64_t rbs_rc_get(const struct rbs *s, const uint8_t *b, uint64_t i)
{
	unsigned bits = 1u << s->order;

	if (bits < 8)
		return (b[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
	switch (bits) {
	case 8: return b[i];
	case 16: return scimg_be16(b + i * 2);
	case 32: return scimg_be32(b + i * 4);
	default: return scimg_be64(b + i * 8);
	}
}

static void rbs_rc_set1(const struct rbs *s, uint8_t *b, uint64_t i)
{
	unsigned bits = 1u << s->order;

	if (bits < 8) {
		unsigned sh = (unsigned)(i * bits % 8);
		b[i * bits / 8] = (uint8_t)((b[i * bits / 8] & ~(((1u << bits) - 1) << sh)) | (1u << sh));
		return;
	}
	switch (bits) {
	case 8: b[i] = 1; break;
	case 16: scimg_put_be16(b + i * 2, 1); break;
	case 32: scimg_put_be32(b + i * 4, 1); break;
	default: scimg_put_be64(b + i * 8, 1); break;
	}
}

/* A host cluster offset read from the file: aligned, inside the file. */
static int rbs_check_off(const struct rbs *s, uint64_t off, const char *what, uint64_t idx)
{
	if (!off || off % s->cs || off > s->file_size || s->file_size - off < s->cs)
		return scimg_int_err(s->ctx, -EINVAL, "'%s': %s %llu: offset %llu is not a cluster inside the file; the image is unchanged",
				     s->path, what, (unsigned long long)idx, (unsigned long long)off);
	return 0;
}

/* The refcount block of range R in memory (a new one when the table has
 * none: placed in cluster *C itself, which it then counts). */
static int rbs_block(struct rbs *s, uint64_t r, uint64_t *c)
{
	int ret;

	if (r >= s->nreft)
		return scimg_int_err(s->ctx, -ENOSPC,
				     "'%s': the refcount table (%u clusters) has no room for the clusters the rebase adds; growing it is not supported (convert the image instead)",
				     s->path, s->h->refcount_table_clusters);
	if (s->rblk[r])
		return 0;
	s->rblk[r] = calloc(1, (size_t)s->cs);
	if (!s->rblk[r])
		return scimg_int_err(s->ctx, -ENOMEM, "out of memory");
	if (s->reft[r]) {
		if ((ret = rbs_check_off(s, s->reft[r], "refcount table entry", r)) < 0)
			return ret;
		return rd(s->ctx, s->fd, s->path, s->rblk[r], (size_t)s->cs, s->reft[r], "refcount block");
	}
	/* a new block, in the cluster being allocated (which lies in range R) */
	s->reft[r] = *c * s->cs;
	s->reft_new[r] = 1;
	s->rblk_dirty[r] = 1;
	rbs_rc_set1(s, s->rblk[r], *c & ((UINT64_C(1) << s->rb_bits) - 1));
	(*c)++;
	return 0;
}

/* Allocate the next free host cluster (refcount 0 -> 1, in memory). */
static int rbs_alloc(struct rbs *s, uint64_t *out)
{
	uint64_t c = s->next, r, i;
	int ret;

	for (;;) {
		r = c >> s->rb_bits;
		if ((ret = rbs_block(s, r, &c)) < 0)
			return ret;
		if ((c >> s->rb_bits) == r)
			break;
		/* the new block took the last cluster of its range */
	}
	i = c & ((UINT64_C(1) << s->rb_bits) - 1);
	if (rbs_rc_get(s, s->rblk[r], i))
		return scimg_int_err(s->ctx, -EINVAL, "'%s': cluster %llu past the end of the file has a refcount; the image is unchanged (repair it first: qemu-img check -r all)",
				     s->path, (unsigned long long)c);
	rbs_rc_set1(s, s->rblk[r], i);
	s->rblk_dirty[r] = 1;
	s->next = c + 1;
	*out = c;
	return 0;
}

/* Make what was allocated since the last commit part of the image: L2
 * table TAB (index L1I, NEW_L2: a new cluster the L1 entry will point at). */
static int rbs_commit(struct rbs *s, uint64_t l1i, const uint8_t *tab, int new_l2)
{
	uint64_t r;
	uint8_t e[8];
	int ret;

	if ((ret = sync_fd(s->ctx, s->fd, s->path)) < 0)
		return ret;
	for (r = 0; r < s->nreft; r++) {
		if (!s->rblk_dirty[r])
			continue;
		if ((ret = wr(s->ctx, s->fd, s->path, s->rblk[r], (size_t)s->cs, s->reft[r], "refcount block")) < 0)
			return ret;
		s->rblk_dirty[r] = 0;
	}
	if ((ret = sync_fd(s->ctx, s->fd, s->path)) < 0)
		return ret;
	for (r = 0; r < s->nreft; r++) {
		if (!s->reft_new[r])
			continue;
		scimg_put_be64(e, s->reft[r]);
		if ((ret = wr(s->ctx, s->fd, s->path, e, 8, s->h->refcount_table_offset + r * 8,
			      "refcount table entry")) < 0)
			return ret;
		s->reft_new[r] = 0;
	}
	if ((ret = sync_fd(s->ctx, s->fd, s->path)) < 0)
		return ret;
	if ((ret = wr(s->ctx, s->fd, s->path, tab, (size_t)s->cs, s->l1[l1i] & Q2_L1E_OFFSET_MASK,
		      "L2 table")) < 0 ||
	    (ret = sync_fd(s->ctx, s->fd, s->path)) < 0)
		return ret;
	if (new_l2) {
		scimg_put_be64(e, s->l1[l1i]);
		if ((ret = wr(s->ctx, s->fd, s->path, e, 8, s->h->l1_table_offset + l1i * 8,
			      "L1 table entry")) < 0 ||
		    (ret = sync_fd(s->ctx, s->fd, s->path)) < 0)
			return ret;
	}
	s->committed = s->next;
	return 0;
}

/* Does [OFF, OFF+LEN) of IMG (NULL: reads zeros) hold data by its
 * metadata? */
static int rbs_has_data(struct scimg_image *img, uint64_t off, uint64_t len, int *data)
{
	struct scimg_extent e;
	uint64_t end;
	int ret;

	*data = 0;
	if (!img || off >= scimg_image_size(img))
		return 0;
	end = off + len;
	if (end > scimg_image_size(img))
		end = scimg_image_size(img);
	while (off < end) {
		if ((ret = scimg_image_block_status(img, off, end - off, &e)) < 0)
			return ret;
		if (e.type == SCIMG_EXTENT_DATA) {
			*data = 1;
			return 0;
		}
		if (!e.length)
			break;
		off += e.length;
	}
	return 0;
}

static int rbs_read(struct scimg_image *img, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t n = 0;
	int ret = 0;

	if (img && off < scimg_image_size(img))
		n = scimg_image_size(img) - off < len ? scimg_image_size(img) - off : len;
	if (n)
		ret = scimg_image_pread(img, buf, (size_t)n, off);
	memset(buf + n, 0, (size_t)(len - n));
	return ret;
}

int scimg_int_qcow2_rebase(struct scimg_ctx *ctx, int fd, const char *path,
			   struct scimg_image *old, struct scimg_image *nb,
			   const char *backing, const char *backing_fmt,
			   uint64_t *copied)
{
	struct q2_header h;
	struct rbs s;
	struct stat st;
	uint8_t *buf = NULL, *tab = NULL, *ob = NULL, *bb = NULL;
	size_t buflen;
	uint64_t vsize, nclu, per, l1i, i;
	int ret;

	*copied = 0;
	memset(&s, 0, sizeof(s));
	ret = load_header(ctx, fd, path, &buf, &buflen, &h);
	if (ret < 0)
		goto out;
	if (h.nb_snapshots || h.nb_bitmaps || h.data_file || h.extended_l2) {
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "'%s': safe rebase of an image with %s is not supported; the image is unchanged",
				    path, h.nb_snapshots ? "internal snapshots" :
				    h.nb_bitmaps ? "persistent bitmaps" :
				    h.data_file ? "an external data file" : "extended L2 entries");
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		ret = scimg_int_err(ctx, -errno, "'%s': %s", path, strerror(errno));
		goto out;
	}
	s.ctx = ctx;
	s.fd = fd;
	s.path = path;
	s.h = &h;
	s.cs = h.cluster_size;
	s.order = h.refcount_order;
	s.rb_bits = h.cluster_bits + 3 - h.refcount_order;
	s.file_size = (uint64_t)st.st_size;
	s.next = s.committed = (s.file_size + s.cs - 1) / s.cs;
	s.nreft = (uint64_t)h.refcount_table_clusters * s.cs / 8;
	vsize = h.size;
	per = UINT64_C(1) << h.l2_bits;
	nclu = (vsize + s.cs - 1) / s.cs;
	s.reft = calloc((size_t)s.nreft, 8);
	s.reft_new = calloc((size_t)s.nreft, 1);
	s.rblk = calloc((size_t)s.nreft, sizeof(*s.rblk));
	s.rblk_dirty = calloc((size_t)s.nreft, 1);
	s.l1 = calloc((size_t)h.l1_size + 1, 8);
	tab = malloc((size_t)s.cs);
	ob = malloc((size_t)s.cs);
	bb = malloc((size_t)s.cs);
	if (!s.reft || !s.reft_new || !s.rblk || !s.rblk_dirty || !s.l1 || !tab || !ob || !bb) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	/* the tables, validated before anything is written */
	if ((ret = rd(ctx, fd, path, s.reft, (size_t)(s.nreft * 8), h.refcount_table_offset,
		      "refcount table")) < 0)
		goto out;
	for (i = 0; i < s.nreft; i++) {
		s.reft[i] = scimg_be64((uint8_t *)&s.reft[i]) ;
		if (s.reft[i] & ~Q2_REFT_OFFSET_MASK) {
			ret = scimg_int_err(ctx, -EINVAL, "'%s': refcount table entry %llu has reserved bits set; the image is unchanged",
					    path, (unsigned long long)i);
			goto out;
		}
		if (s.reft[i] && (ret = rbs_check_off(&s, s.reft[i], "refcount table entry", i)) < 0)
			goto out;
	}
	if (h.l1_size && (ret = rd(ctx, fd, path, s.l1, (size_t)h.l1_size * 8, h.l1_table_offset,
				   "L1 table")) < 0)
		goto out;
	for (i = 0; i < h.l1_size; i++) {
		s.l1[i] = scimg_be64((uint8_t *)&s.l1[i]);
		if (s.l1[i] & Q2_L1E_RESERVED) {
			ret = scimg_int_err(ctx, -EINVAL, "'%s': L1 entry %llu has reserved bits set; the image is unchanged",
					    path, (unsigned long long)i);
			goto out;
		}
		if (!(s.l1[i] & Q2_L1E_OFFSET_MASK))
			continue;
		if ((ret = rbs_check_off(&s, s.l1[i] & Q2_L1E_OFFSET_MASK, "L1 entry", i)) < 0)
			goto out;
		if (!(s.l1[i] & Q2_OFLAG_COPIED)) {
			ret = scimg_int_err(ctx, -ENOTSUP, "'%s': L2 table %llu is shared (no COPIED flag); safe rebase is not supported on it; the image is unchanged",
					    path, (unsigned long long)i);
			goto out;
		}
	}
	for (l1i = 0; l1i * per < nclu; l1i++) {
		uint64_t g0 = l1i * per, g, l2off = s.l1[l1i] & Q2_L1E_OFFSET_MASK;
		int dirty = 0, new_l2 = 0;

		if ((ret = scimg_int_check_cancel(ctx)) < 0)
			goto undo;
		if (l2off) {
			if ((ret = rd(ctx, fd, path, tab, (size_t)s.cs, l2off, "L2 table")) < 0)
				goto undo;
		} else {
			memset(tab, 0, (size_t)s.cs);
		}
		for (g = g0; g < g0 + per && g < nclu;) {
			uint64_t e = scimg_be64(tab + (g - g0) * 8), off, n, span, gend;
			int od, nd;

			if (e) {
				/* allocated in the image itself (data, compressed or zero) */
				g++;
				continue;
			}
			/* the run of unallocated clusters from G: metadata first */
			for (gend = g + 1; gend < g0 + per && gend < nclu &&
			     !scimg_be64(tab + (gend - g0) * 8); gend++)
				;
			off = g * s.cs;
			span = (gend * s.cs < vsize ? gend * s.cs : vsize) - off;
			if ((ret = rbs_has_data(old, off, span, &od)) < 0 ||
			    (ret = rbs_has_data(nb, off, span, &nd)) < 0)
				goto undo;
			if (!od && !nd) {
				g = gend;
				continue;
			}
			for (; g < gend; g++) {
				uint64_t c;
				int ozero;

				off = g * s.cs;
				n = vsize - off < s.cs ? vsize - off : s.cs;
				if ((ret = rbs_read(od ? old : NULL, ob, n, off)) < 0 ||
				    (ret = rbs_read(nd ? nb : NULL, bb, n, off)) < 0)
					goto undo;
				if (!memcmp(ob, bb, (size_t)n))
					continue;
				ozero = scimg_int_is_zero(ob, (size_t)n);
				if (!dirty && !l2off) {
					/* a new L2 table */
					if ((ret = rbs_alloc(&s, &c)) < 0)
						goto undo;
					l2off = c * s.cs;
					s.l1[l1i] = l2off | Q2_OFLAG_COPIED;
					new_l2 = 1;
				}
				dirty = 1;
				if (ozero && h.version >= 3) {
					scimg_put_be64(tab + (g - g0) * 8, Q2_OFLAG_ZERO);
				} else {
					if ((ret = rbs_alloc(&s, &c)) < 0)
						goto undo;
					memset(ob + n, 0, (size_t)(s.cs - n));
					if ((ret = wr(ctx, fd, path, ob, (size_t)s.cs, c * s.cs, "data cluster")) < 0)
						goto undo;
					scimg_put_be64(tab + (g - g0) * 8, (c * s.cs) | Q2_OFLAG_COPIED);
				}
				(*copied)++;
			}
		}
		if (dirty && (ret = rbs_commit(&s, l1i, tab, new_l2)) < 0)
			goto undo;
	}
	/* last: the header names the new backing file */
	ret = scimg_int_qcow2_set_backing(ctx, fd, path, backing, backing_fmt);
	goto out;
undo:
	/* drop what nothing refers to (data past the last commit) */
	{
		uint64_t keep = s.committed * s.cs;
		if (s.committed == (s.file_size + s.cs - 1) / s.cs)
			keep = s.file_size;
		if (ftruncate(fd, (off_t)keep) < 0) {
			/* the error already recorded is the one to report */
		}
	}
out:
	if (s.rblk)
		for (i = 0; i < s.nreft; i++)
			free(s.rblk[i]);
	free(s.rblk);
	free(s.rblk_dirty);
	free(s.reft);
	free(s.reft_new);
	free(s.l1);
	free(tab);
	free(ob);
	free(bb);
	free(buf);
	scimg_int_qcow2_header_free(&h);
	return ret;
}
