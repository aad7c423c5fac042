/* convert.c - the copy engine behind scimg convert, and scimg compare.
 *
 * The source is walked in chunks aligned to the output's unit (the
 * compression unit with -c, else CHUNK bytes).  Block status skips holes and
 * zero extents without reading them, so cost follows allocated data.  Data
 * chunks go through an ordered pipeline: worker threads read them (when the
 * source format supports parallel reads, so decompression runs on every
 * core), find zero runs and compress; the calling thread writes results
 * strictly in offset order, which keeps sequential-only writers
 * (streamOptimized VMDK) correct.  Runs of zeros of at least the -S size are
 * left unwritten (a new image reads as zeros).  Memory is bounded by the
 * number of jobs in flight (a few per worker).
 *
 * Outputs that compress every unit anyway (SCIMG_FMT_ALWAYS_COMPRESSED:
 * streamOptimized VMDK) go through the compressing workers with or
 * without -c.  Every WRITEBACK_EVERY bytes stored, a writeback thread
 * starts writeback of the output (sync_file_range), so that the
 * fdatasync() before the rename (lib/image.c) has little left to wait for.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scimg-int.h"
#include "package/package.h"

#define CHUNK (2u << 20)       /* plain copy unit */
#define STATUS_SPAN (UINT64_C(1) << 40)
/* start writeback of the output after this many bytes were stored (see
 * scimg_int_out_writeback): the final fdatasync then finds little left */
#define WRITEBACK_EVERY (32u << 20)

/* I/O buffers are page-aligned: the kernel copies into and out of
 * misaligned user buffers several times slower (measured: 2 MiB preads
 * from the page cache into a malloc()ed buffer were 5x slower). */
static void *io_alloc(size_t n)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, n ? n : 1) != 0)
		return NULL;
	return p;
}

/* ---- the pipeline ------------------------------------------------------
 *
 * The calling thread walks the source and queues jobs in offset order; worker
 * threads read (when the source format allows parallel reads), detect zeros
 * and compress; the calling thread writes finished jobs strictly in queue
 * order.  Holes travel through the queue too, so even a sequential-only
 * writer sees every range in order.
 */

enum job_kind {
	JOB_DATA,     /* read (maybe), then store */
	JOB_ZERO,     /* range reads as zeros: write_zeroes or nothing */
	JOB_FILL,     /* -S 0: store explicit zeros */
};

enum job_result {
	RES_PLAIN,      /* write IN with zero-run detection */
	RES_STORE,      /* write IN as it is (compressor declined) */
	RES_COMPRESSED, /* write OUT with pwrite_compressed */
	RES_ZERO,       /* nothing but zeros */
};

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

struct slot {
	enum slot_state state;
	enum job_kind kind;
	int need_read;
	uint64_t off;
	uint64_t len;
	size_t clen;
	int result;   /* enum job_result, or -errno */
	char err[512]; /* message when result < 0 */
	uint8_t *in;
	uint8_t *out;
	size_t outcap;
};

struct pipeline {
	struct scimg_image *src, *dst;
	int compress;
	uint64_t sparse;
	pthread_mutex_t lock;
	pthread_cond_t work;   /* a job was queued, or stop */
	pthread_cond_t done;   /* a job finished */
	struct slot *slots;
	size_t nslots;
	size_t next_fill;      /* sequence numbers; slot = seq % nslots */
	size_t next_write;
	size_t next_take;
	int stop;
	pthread_t *threads;
	int nthreads;
	uint64_t unsynced;     /* bytes stored since the last writeback kick */
	/* writeback thread: sync_file_range() can block for a long time (the
	 * file system allocates blocks), so it runs beside the writer */
	pthread_t wb_thread;
	int wb_running;
	int wb_kick;           /* under lock; signalled through work */
	pthread_cond_t wb_cond;
};

static void run_job(struct pipeline *p, struct slot *s)
{
	size_t len = (size_t)s->len;
	int r;

	s->err[0] = '\0';
	switch (s->kind) {
	case JOB_ZERO:
		s->result = RES_ZERO;
		return;
	case JOB_FILL:
		memset(s->in, 0, len);
		break;
	case JOB_DATA:
		if (s->need_read) {
			r = p->src->fmt->pread(p->src, s->in, len, s->off);
			if (r < 0) {
				s->result = r;
				return;
			}
		}
		if (p->sparse && scimg_int_is_zero(s->in, len)) {
			s->result = RES_ZERO;
			return;
		}
		break;
	}
	if (!p->compress) {
		s->result = s->kind == JOB_FILL ? RES_STORE : RES_PLAIN;
		return;
	}
	s->clen = s->outcap;
	r = p->dst->fmt->compress(p->dst, s->in, len, s->out, &s->clen);
	if (r < 0 && !s->err[0])
		snprintf(s->err, sizeof(s->err), "'%s': compression failed at offset %llu",
			 p->dst->path, (unsigned long long)s->off);
	s->result = r < 0 ? r : r == 1 ? RES_STORE : RES_COMPRESSED;
}

static void *worker(void *arg)
{
	struct pipeline *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct slot *s;

		while (!p->stop && p->next_take == p->next_fill)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		s = &p->slots[p->next_take % p->nslots];
		p->next_take++;
		s->state = SLOT_BUSY;
		pthread_mutex_unlock(&p->lock);
		scimg_int_err_redirect(s->err, sizeof(s->err));
		run_job(p, s);
		scimg_int_err_redirect(NULL, 0);
		pthread_mutex_lock(&p->lock);
		s->state = SLOT_DONE;
		pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void pipeline_free(struct pipeline *p)
{
	size_t i;

	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_cond_signal(&p->wb_cond);
	pthread_mutex_unlock(&p->lock);
	for (int t = 0; t < p->nthreads; t++)
		pthread_join(p->threads[t], NULL);
	if (p->wb_running)
		pthread_join(p->wb_thread, NULL);
	pthread_cond_destroy(&p->wb_cond);
	free(p->threads);
	if (p->slots) {
		for (i = 0; i < p->nslots; i++) {
			free(p->slots[i].in);
			free(p->slots[i].out);
		}
		free(p->slots);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
}

static int pipeline_init(struct pipeline *p, struct scimg_image *src,
			 struct scimg_image *dst, int compress, uint64_t sparse,
			 size_t unit, int nthreads)
{
	struct scimg_ctx *ctx = dst->ctx;
	size_t i;

	memset(p, 0, sizeof(*p));
	p->src = src;
	p->dst = dst;
	p->compress = compress;
	p->sparse = sparse;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	pthread_cond_init(&p->wb_cond, NULL);
	/* enough jobs in flight to keep every worker busy while the writer
	 * waits for the oldest; memory: nslots * unit (x3 with -c) */
	p->nslots = compress ? (size_t)nthreads * 8 + 4 : (size_t)nthreads * 2 + 2;
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	if (!p->slots)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	for (i = 0; i < p->nslots; i++) {
		p->slots[i].in = io_alloc(unit);
		if (!p->slots[i].in)
			return scimg_int_err(ctx, -ENOMEM, "out of memory");
		if (compress) {
			p->slots[i].outcap = unit * 2 + 4096;
			p->slots[i].out = io_alloc(p->slots[i].outcap);
			if (!p->slots[i].out)
				return scimg_int_err(ctx, -ENOMEM, "out of memory");
		}
	}
	p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
	if (!p->threads)
		return scimg_int_err(ctx, -ENOMEM, "out of memory");
	for (int t = 0; t < nthreads; t++) {
		if (pthread_create(&p->threads[t], NULL, worker, p) != 0)
			return scimg_int_err(ctx, -EAGAIN, "could not start a worker thread");
		p->nthreads++;
	}
	return 0;
}

static int write_plain(struct scimg_image *dst, const uint8_t *buf, size_t len,
		       uint64_t off, uint64_t sparse);

static int write_slot_data(struct pipeline *p, struct slot *s);

static void *wb_main(void *arg)
{
	struct pipeline *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && !p->wb_kick)
			pthread_cond_wait(&p->wb_cond, &p->lock);
		if (p->stop)
			break;
		p->wb_kick = 0;
		pthread_mutex_unlock(&p->lock);
		scimg_int_out_writeback(p->dst);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Ask the writeback thread to push what was written so far (never waits). */
static void writeback_kick(struct pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	if (!p->wb_running && !p->stop &&
	    pthread_create(&p->wb_thread, NULL, wb_main, p) == 0)
		p->wb_running = 1;
	p->wb_kick = 1;
	pthread_cond_signal(&p->wb_cond);
	pthread_mutex_unlock(&p->lock);
}

static int write_slot(struct pipeline *p, struct slot *s)
{
	int ret = write_slot_data(p, s);

	if (ret == 0 && s->result != RES_ZERO) {
		p->unsynced += s->result == RES_COMPRESSED ? s->clen : s->len;
		if (p->unsynced >= WRITEBACK_EVERY &&
		    !(p->dst->create_flags & SCIMG_CREATE_NO_SYNC)) {
			p->unsynced = 0;
			writeback_kick(p);
		}
	}
	return ret;
}

static int write_slot_data(struct pipeline *p, struct slot *s)
{
	struct scimg_image *dst = p->dst;

	if (s->result < 0) {
		/* the reader's or compressor's message, recorded by the worker */
		scimg_int_err_set(dst->ctx, s->result, s->err);
		return s->result;
	}
	switch (s->result) {
	case RES_ZERO:
		return dst->fmt->write_zeroes ?
			dst->fmt->write_zeroes(dst, s->off, s->len) : 0;
	case RES_PLAIN:
		return write_plain(dst, s->in, (size_t)s->len, s->off, p->sparse);
	case RES_STORE:
		return dst->fmt->pwrite(dst, s->in, (size_t)s->len, s->off);
	default:
		if (dst->fmt->pwrite_compressed_src)
			return dst->fmt->pwrite_compressed_src(dst, s->off, s->out, s->clen,
							       s->in, (size_t)s->len);
		return dst->fmt->pwrite_compressed(dst, s->off, s->out, s->clen,
						   (size_t)s->len);
	}
}

/* Write finished jobs at the head of the queue.  With WAIT, block for the
 * oldest one (with ALL, for every queued one). */
static int pipeline_drain(struct pipeline *p, int wait, int all)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (p->next_write < p->next_fill) {
		struct slot *s = &p->slots[p->next_write % p->nslots];

		if (s->state != SLOT_DONE) {
			if (!wait)
				break;
			pthread_cond_wait(&p->done, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		ret = write_slot(p, s);
		pthread_mutex_lock(&p->lock);
		s->state = SLOT_FREE;
		p->next_write++;
		if (ret < 0)
			break;
		if (!all)
			wait = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* A free slot for the next job (writes the oldest ones when all are used). */
static int pipeline_slot(struct pipeline *p, struct slot **out)
{
	int ret;

	while (p->next_fill - p->next_write >= p->nslots) {
		ret = pipeline_drain(p, 1, 0);
		if (ret < 0)
			return ret;
	}
	*out = &p->slots[p->next_fill % p->nslots];
	return 0;
}

static void pipeline_submit(struct pipeline *p, struct slot *s,
			    enum job_kind kind, int need_read, uint64_t off,
			    uint64_t len)
{
	pthread_mutex_lock(&p->lock);
	s->kind = kind;
	s->need_read = need_read;
	s->off = off;
	s->len = len;
	s->state = SLOT_QUEUED;
	p->next_fill++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

static int queue(struct pipeline *p, enum job_kind kind, int need_read,
		 uint64_t off, uint64_t len, struct slot **filled)
{
	struct slot *s;
	int ret;

	if ((ret = pipeline_slot(p, &s)) < 0)
		return ret;
	if (filled) {
		/* the caller fills s->in first, then calls pipeline_submit */
		*filled = s;
		return 0;
	}
	pipeline_submit(p, s, kind, need_read, off, len);
	return pipeline_drain(p, 0, 0);
}

/* ---- convert ---------------------------------------------------------- */

/* Does [off, off+len) of SRC hold any data?  Sets *skip_to to the end of
 * the non-data extent when the whole range is non-data. */
static int range_has_data(struct scimg_image *src, uint64_t off, uint64_t len,
			  int *has_data, uint64_t *skip_to)
{
	uint64_t pos = off, end = off + len;
	struct scimg_extent e;
	int ret;

	*has_data = 0;
	*skip_to = end;
	while (pos < end) {
		uint64_t span = src->size - pos;
		if (span > STATUS_SPAN)
			span = STATUS_SPAN;
		ret = scimg_image_block_status(src, pos, span, &e);
		if (ret < 0)
			return ret;
		if (e.type == SCIMG_EXTENT_DATA) {
			*has_data = 1;
			return 0;
		}
		if (pos == off)
			*skip_to = pos + e.length;
		pos += e.length;
	}
	return 0;
}

static int write_plain(struct scimg_image *dst, const uint8_t *buf, size_t len,
		       uint64_t off, uint64_t sparse)
{
	size_t i = 0;
	int ret;

	if (!sparse)
		return dst->fmt->pwrite(dst, buf, len, off);
	while (i < len) {
		size_t blk = (size_t)(sparse - ((off + i) % sparse));
		size_t j;
		int zero;

		if (blk > len - i)
			blk = len - i;
		zero = scimg_int_is_zero(buf + i, blk);
		/* extend the run while blocks keep the same kind */
		j = i + blk;
		while (j < len) {
			size_t b = (size_t)(sparse < len - j ? sparse : len - j);
			if (scimg_int_is_zero(buf + j, b) != zero)
				break;
			j += b;
		}
		if (!zero) {
			ret = dst->fmt->pwrite(dst, buf + i, j - i, off + i);
			if (ret < 0)
				return ret;
		} else if (dst->fmt->write_zeroes) {
			ret = dst->fmt->write_zeroes(dst, off + i, j - i);
			if (ret < 0)
				return ret;
		}
		i = j;
	}
	return 0;
}


/* ---- convert over a backing file (-B) ----------------------------------
 *
 * The output names a backing file and must read as the source: every
 * output cluster whose source content equals what the backing file reads
 * there stays unallocated; the others get the source's data, or a zero
 * cluster when the source reads zeros there.  Both images are read in
 * order on the calling thread (the backing handle is not shared with
 * workers); clusters where both read as zeros by their metadata are not
 * read at all. */

/* Append ",KEY=VAL" (commas doubled) to *S. */
static int opts_append(char **s, const char *key, const char *val)
{
	size_t n = *s ? strlen(*s) : 0, i, o;
	char *r = realloc(*s, n + strlen(key) + 2 * strlen(val) + 3);

	if (!r)
		return -ENOMEM;
	o = n;
	if (n)
		r[o++] = ',';
	strcpy(r + o, key);
	o += strlen(key);
	r[o++] = '=';
	for (i = 0; val[i]; i++) {
		r[o++] = val[i];
		if (val[i] == ',')
			r[o++] = ',';
	}
	r[o] = '\0';
	*s = r;
	return 0;
}

/* -B/-F and the options backing_file=/backing_fmt=: they must agree; give
 * the backing file and format (*BACKING_OUT, *BFMT_OUT: NULL when none)
 * and the writer's option string with both in it (*OPTS_OUT); the caller
 * frees all three. */
static int backing_options(struct scimg_ctx *ctx, const struct scimg_convert_opts *o,
			   const char *dst_format, const char *options,
			   char **backing_out, char **bfmt_out, char **opts_out)
{
	const struct scimg_format *fmt = scimg_int_format_find(dst_format);
	struct scimg_opts kv = { NULL, 0 };
	const char *b, *bf, *ob = NULL, *obf = NULL;
	int ret;

	*opts_out = *backing_out = *bfmt_out = NULL;
	b = o->backing && *o->backing ? o->backing : NULL;
	bf = o->backing_format && *o->backing_format ? o->backing_format : NULL;
	if (fmt && fmt->create_opts &&
	    (ret = scimg_int_opts_parse(ctx, options, fmt->create_opts, fmt->name, &kv)) < 0)
		return ret;
	ob = scimg_int_opts_get(&kv, "backing_file");
	obf = scimg_int_opts_get(&kv, "backing_fmt");
	ret = 0;
	if (ob && !*ob)
		ob = NULL;
	if (obf && !*obf)
		obf = NULL;
	if (b && ob && strcmp(b, ob))
		ret = scimg_int_err(ctx, -EINVAL, "backing file '%s' (-B) and option backing_file='%s' disagree",
				    b, ob);
	else if (bf && obf && strcmp(bf, obf))
		ret = scimg_int_err(ctx, -EINVAL, "backing format '%s' (-F) and option backing_fmt='%s' disagree",
				    bf, obf);
	if (ret < 0)
		goto out;
	if (!b)
		b = ob;
	if (!bf)
		bf = obf;
	if (!b) {
		if (bf)
			ret = scimg_int_err(ctx, -EINVAL, "a backing format (-F) needs a backing file (-B)");
		goto out;
	}
	if (!fmt || strcmp(fmt->name, "qcow2")) {
		ret = scimg_int_err(ctx, -ENOTSUP,
				    "format '%s' cannot be written with a backing file (-B): only qcow2 can%s",
				    dst_format, fmt && !strcmp(fmt->name, "vmdk") ?
				    " (scimg does not write VMDK delta disks)" : "");
		goto out;
	}
	if (!bf) {
		/* qemu-img 7.2: "Use of backing file requires explicit backing format" */
		ret = scimg_int_err(ctx, -EINVAL,
				    "use of backing file '%s' requires an explicit backing format (-F FMT or -o backing_fmt=FMT), as with qemu-img",
				    b);
		goto out;
	}
	if (!scimg_int_format_find(bf)) {
		ret = scimg_int_err_unknown_format(ctx, bf);
		goto out;
	}
	if (scimg_int_name_is_url(b)) {
		ret = scimg_int_err(ctx, -ENOTSUP, "backing file '%s': a URL cannot be the backing file of a new image (name a local file)",
				    b);
		goto out;
	}
	if ((options && *options && !(*opts_out = strdup(options))) ||
	    (!ob && opts_append(opts_out, "backing_file", b) < 0) ||
	    (!obf && opts_append(opts_out, "backing_fmt", bf) < 0) ||
	    !(*backing_out = strdup(b)) || !(*bfmt_out = strdup(bf)))
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
out:
	scimg_int_opts_free(&kv);
	return ret;
}

/* Is [OFF, OFF+LEN) of IMG (which may end before) free of data by its
 * metadata? */
static int reads_zero_meta(struct scimg_image *img, uint64_t off, uint64_t len, int *zero)
{
	uint64_t skip_to;
	int has_data, ret;

	*zero = 1;
	if (off >= img->size)
		return 0;
	if (len > img->size - off)
		len = img->size - off;
	ret = range_has_data(img, off, len, &has_data, &skip_to);
	*zero = !has_data;
	return ret;
}

/* Read [OFF, OFF+LEN) of IMG into BUF, zeros past its end. */
static int read_padded(struct scimg_image *img, uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t n = off >= img->size ? 0 : img->size - off < len ? img->size - off : len;
	int ret = 0;

	if (n)
		ret = scimg_image_pread(img, buf, (size_t)n, off);
	if (n < len)
		memset(buf + n, 0, (size_t)(len - n));
	return ret;
}

static int convert_over_backing(struct scimg_ctx *ctx, const struct scimg_convert_opts *o,
				struct scimg_image *src, struct scimg_image *bimg,
				struct scimg_image *dst, int compress,
				struct scimg_progress *pr)
{
	uint64_t cs = dst->fmt->compress_unit ? dst->fmt->compress_unit(dst) : 0;
	uint64_t size = src->size, pos, unit;
	uint8_t *sb = NULL, *bb = NULL, *cb = NULL;
	size_t cbcap = 0;
	int ret = 0;

	if (!cs || cs > (2u << 20) || (cs & (cs - 1)))
		return scimg_int_err(ctx, -ENOTSUP, "'%s': the output has no cluster size to compare with the backing file",
				     o->dst);
	unit = CHUNK < cs ? cs : CHUNK;
	sb = io_alloc((size_t)unit);
	bb = io_alloc((size_t)unit);
	if (compress) {
		cbcap = (size_t)cs * 2 + 4096;
		cb = io_alloc(cbcap);
	}
	if (!sb || !bb || (compress && !cb)) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	for (pos = 0; pos < size;) {
		uint64_t len = size - pos < unit ? size - pos : unit, c;
		uint64_t run_off = 0, run_len = 0;
		int szero, bzero;

		if ((ret = scimg_int_check_cancel(ctx)) < 0 ||
		    (ret = reads_zero_meta(src, pos, len, &szero)) < 0 ||
		    (ret = reads_zero_meta(bimg, pos, len, &bzero)) < 0)
			goto out;
		if (szero && bzero)
			goto next; /* both read zeros: the output reads the backing's */
		if (szero)
			memset(sb, 0, (size_t)len);
		else if ((ret = scimg_image_pread(src, sb, (size_t)len, pos)) < 0)
			goto out;
		if (bzero)
			memset(bb, 0, (size_t)len);
		else if ((ret = read_padded(bimg, bb, len, pos)) < 0)
			goto out;
		for (c = 0;; c += cs) {
			uint64_t n = c < len ? (len - c < cs ? len - c : cs) : 0;
			int differs = n && memcmp(sb + c, bb + c, (size_t)n) != 0;
			int zero = differs && scimg_int_is_zero(sb + c, (size_t)n);

			/* data clusters that differ are written in runs */
			if (differs && !zero && !compress) {
				if (!run_len)
					run_off = c;
				run_len += n;
				continue;
			}
			if (run_len) {
				if ((ret = dst->fmt->pwrite(dst, sb + run_off, (size_t)run_len,
							    pos + run_off)) < 0)
					goto out;
				run_len = 0;
			}
			if (!n)
				break;
			if (!differs)
				continue;
			if (zero && o->sparse_size) {
				ret = dst->fmt->write_zeroes(dst, pos + c, n);
			} else if (compress && !zero) {
				size_t clen = cbcap;
				ret = dst->fmt->compress(dst, sb + c, (size_t)n, cb, &clen);
				if (ret == 1)
					ret = dst->fmt->pwrite(dst, sb + c, (size_t)n, pos + c);
				else if (ret == 0)
					ret = dst->fmt->pwrite_compressed(dst, pos + c, cb, clen, (size_t)n);
			} else {
				ret = dst->fmt->pwrite(dst, sb + c, (size_t)n, pos + c);
			}
			if (ret < 0)
				goto out;
		}
		if (!szero)
			pr->data_done += len;
next:
		pos += len;
		if (o->progress)
			o->progress(o->progress_opaque, pos, size);
		if (o->progress_ex) {
			pr->pos = pos;
			o->progress_ex(o->progress_opaque, pr);
		}
	}
	ret = 0;
out:
	free(sb);
	free(bb);
	free(cb);
	return ret;
}

static int cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > 64 ? 64 : (int)n;
}

int scimg_convert(struct scimg_ctx *ctx, const struct scimg_convert_opts *opts)
{
	struct scimg_convert_opts oc;
	const struct scimg_convert_opts *o = &oc;
	struct scimg_progress pr;
	struct scimg_image *src = NULL, *dst = NULL;
	struct pipeline pl;
	int have_pl = 0, parallel_read, nt, ret, compress;
	uint64_t pos, size, dst_size, unit, sparse;
	const char *dst_format, *wopts;
	char *provider_opts = NULL, *backing = NULL, *bfmt = NULL, *bopts = NULL;
	struct scimg_image *bimg = NULL;

	scimg_ctx_clear_error(ctx);
	/* the caller's struct may be older (smaller) than ours */
	ret = scimg_int_opts_struct_copy(ctx, &oc, sizeof(oc), opts, "scimg_convert_opts");
	if (ret < 0)
		return ret;
	compress = o->compress;
	sparse = o->sparse_size;
	/* a Supercloud image is a package built around a working disk, not a
	 * streaming format writer (lib/sci-build.c) */
	if (o->dst_format && strcmp(o->dst_format, "sci") == 0) {
		if ((o->backing && *o->backing) || (o->backing_format && *o->backing_format))
			return scimg_int_err(ctx, -ENOTSUP, "a Supercloud image (sci) cannot have a backing file (-B)");
		/* the package is renamed over DST at the end: check it first */
		ret = scimg_image_open_opts(ctx, o->src, o->src_format, o->src_options, &src);
		if (ret < 0)
			return ret;
		ret = scimg_image_check_output(ctx, src, o->dst, "sci",
					       (o->no_create ? SCIMG_CREATE_NO_CREATE : 0));
		scimg_image_close(src);
		if (ret < 0)
			return ret;
		return scimg_int_sci_convert(ctx, o);
	}
	ret = scimg_image_open_opts(ctx, o->src, o->src_format, o->src_options, &src);
	if (ret < 0)
		return ret;
	size = src->size;
	dst_size = size;
	dst_format = o->dst_format;
	if (o->provider) {
		ret = scimg_int_profile_apply(ctx, o->provider, &dst_format, o->options,
					      &provider_opts, &dst_size);
		if (ret < 0)
			goto out;
	}
	if (o->target_is_zero && !o->no_create) {
		ret = scimg_int_err(ctx, -EINVAL,
				    "'%s': a target known to read as zeros applies only to an existing target written in place",
				    o->dst);
		goto out;
	}
	wopts = provider_opts ? provider_opts : o->options;
	if (dst_format && (ret = backing_options(ctx, o, dst_format, wopts, &backing, &bfmt, &bopts)) < 0)
		goto out;
	if (backing) {
		char *bpath;

		if (o->no_create) {
			ret = scimg_int_err(ctx, -EINVAL, "a backing file (-B) cannot be given when writing into an existing target (-n)");
			goto out;
		}
		/* the user named it: opened with the context's flags, a
		 * relative name relative to DST's directory (as it is stored);
		 * a regular file or block device (scimg_image_open) */
		bpath = scimg_int_info_join(o->dst, backing);
		if (!bpath) {
			ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
			goto out;
		}
		ret = scimg_image_open(ctx, bpath, bfmt, &bimg);
		if (ret < 0) {
			char msg[1024];
			snprintf(msg, sizeof(msg), "%s", scimg_ctx_errmsg(ctx));
			ret = scimg_int_err(ctx, ret, "could not open backing file '%s': %s", bpath, msg);
			free(bpath);
			goto out;
		}
		free(bpath);
		/* DST is neither the backing file nor a file of its chain */
		ret = scimg_image_check_output(ctx, bimg, o->dst, dst_format, 0);
		if (ret == -EPERM && scimg_image_check_output(ctx, NULL, o->dst, dst_format, 0) == 0)
			ret = scimg_int_err(ctx, -EPERM,
					    "'%s' is the backing file (-B) or a file it reads from; refusing to overwrite it",
					    o->dst);
		if (ret < 0)
			goto out;
		wopts = bopts;
	}
	/* checks DST against SRC's chain before anything is created */
	ret = scimg_int_image_create(ctx, o->dst, dst_format, dst_size, wopts,
				     (backing ? SCIMG_CREATE_BACKING : 0) |
				     (o->compress ? SCIMG_CREATE_COMPRESS : 0) |
				     (o->no_sync ? SCIMG_CREATE_NO_SYNC : 0) |
				     (o->no_create ? SCIMG_CREATE_NO_CREATE : 0) |
				     (o->target_is_zero ? SCIMG_CREATE_TARGET_IS_ZERO : 0),
				     src, &dst);
	if (ret < 0)
		goto out;
	nt = o->threads > 0 ? o->threads : cpu_count();
	/* an output that compresses every unit anyway does it on the workers;
	 * only when -S keeps its meaning (zero units are left out either way,
	 * and no zero run shorter than -S is) */
	if (!compress && (dst->fmt->flags & SCIMG_FMT_ALWAYS_COMPRESSED) &&
	    dst->fmt->compress_unit) {
		unit = dst->fmt->compress_unit(dst);
		if (unit && unit <= (64u << 20) && sparse <= unit &&
		    (!sparse || unit % sparse == 0))
			compress = 1;
	}
	if (compress) {
		unit = dst->fmt->compress_unit(dst);
		if (unit == 0 || unit > (64u << 20)) {
			ret = scimg_int_err(ctx, -ENOTSUP, "'%s': compression not possible with these options",
					    o->dst);
			goto out;
		}
	} else {
		unit = CHUNK;
		if (sparse > unit)
			unit = (sparse + CHUNK - 1) / CHUNK * CHUNK;
	}
	if (bimg) {
		memset(&pr, 0, sizeof(pr));
		pr.size = sizeof(pr);
		pr.virtual_size = size;
		if (o->progress_ex) {
			pr.phase = "copying";
			o->progress_ex(o->progress_opaque, &pr);
		}
		ret = convert_over_backing(ctx, o, src, bimg, dst, o->compress, &pr);
		if (ret < 0)
			goto out;
		goto finish;
	}
	parallel_read = (src->fmt->flags & SCIMG_FMT_PARALLEL_READ) &&
			src->src->ops->thread_safe;
	ret = pipeline_init(&pl, src, dst, compress, sparse, (size_t)unit, nt);
	have_pl = 1;
	if (ret < 0)
		goto out;

	memset(&pr, 0, sizeof(pr));
	pr.size = sizeof(pr);
	pr.virtual_size = size;
	if (o->progress_ex) {
		/* the same walk as below, metadata only: how much data is there */
		pr.phase = "scanning";
		o->progress_ex(o->progress_opaque, &pr);
		for (pos = 0; pos < size;) {
			uint64_t len = size - pos < unit ? size - pos : unit, skip_to, next;
			int has_data;

			if ((ret = scimg_int_check_cancel(ctx)) < 0 ||
			    (ret = range_has_data(src, pos, len, &has_data, &skip_to)) < 0)
				goto out;
			if (has_data) {
				pr.data_total += len;
				pos += len;
			} else {
				next = skip_to - skip_to % unit;
				pos = next <= pos ? pos + len : next > size ? size : next;
			}
		}
		pr.phase = "copying";
		o->progress_ex(o->progress_opaque, &pr);
	}
	pos = 0;
	while (pos < size) {
		uint64_t len = size - pos < unit ? size - pos : unit;
		uint64_t skip_to, next;
		struct slot *s;
		int has_data;

		if ((ret = scimg_int_check_cancel(ctx)) < 0)
			goto out;
		ret = range_has_data(src, pos, len, &has_data, &skip_to);
		if (ret < 0)
			goto out;
		if (has_data) {
			if (parallel_read) {
				ret = queue(&pl, JOB_DATA, 1, pos, len, NULL);
			} else if ((ret = queue(&pl, JOB_DATA, 0, pos, len, &s)) == 0) {
				ret = scimg_image_pread(src, s->in, (size_t)len, pos);
				if (ret == 0) {
					pipeline_submit(&pl, s, JOB_DATA, 0, pos, len);
					ret = pipeline_drain(&pl, 0, 0);
				}
			}
			if (ret < 0)
				goto out;
			pos += len;
			pr.data_done += len;
		} else {
			next = skip_to - skip_to % unit;
			if (next <= pos)
				next = pos + len;
			if (next > size)
				next = size;
			if (sparse) {
				if ((ret = queue(&pl, JOB_ZERO, 0, pos, next - pos, NULL)) < 0)
					goto out;
				pos = next;
			} else {
				/* -S 0: allocate everything, zeros included */
				for (; pos < next; pos += len) {
					len = next - pos < unit ? next - pos : unit;
					if ((ret = queue(&pl, JOB_FILL, 0, pos, len, NULL)) < 0 ||
					    (ret = scimg_int_check_cancel(ctx)) < 0)
						goto out;
				}
			}
		}
		if (o->progress)
			o->progress(o->progress_opaque, pos, size);
		if (o->progress_ex) {
			pr.pos = pos;
			o->progress_ex(o->progress_opaque, &pr);
		}
	}
	if (o->progress_ex) {
		pr.phase = "finishing";
		o->progress_ex(o->progress_opaque, &pr);
	}
	if ((ret = pipeline_drain(&pl, 1, 1)) < 0)
		goto out;
	pipeline_free(&pl);
	have_pl = 0;
finish:
	if (bimg && o->progress_ex) {
		pr.phase = "finishing";
		o->progress_ex(o->progress_opaque, &pr);
	}
	ret = scimg_image_finish(dst);
	dst = NULL;
	if (ret < 0)
		goto out;
	if (o->progress)
		o->progress(o->progress_opaque, size, size);
	if (o->progress_ex) {
		pr.phase = "done";
		pr.pos = size;
		if (pr.data_total < pr.data_done)
			pr.data_total = pr.data_done;
		o->progress_ex(o->progress_opaque, &pr);
	}
out:
	if (have_pl)
		pipeline_free(&pl);
	if (dst)
		scimg_image_abort(dst);
	scimg_image_close(bimg);
	scimg_image_close(src);
	free(provider_opts);
	free(backing);
	free(bfmt);
	free(bopts);
	return ret;
}

/* ---- compare ---------------------------------------------------------- */

static int status_at(struct scimg_image *img, uint64_t pos, uint64_t *len,
		     int *data)
{
	struct scimg_extent e;
	uint64_t span = img->size - pos;
	int ret;

	if (span > STATUS_SPAN)
		span = STATUS_SPAN;
	ret = scimg_image_block_status(img, pos, span, &e);
	if (ret < 0)
		return ret;
	*len = e.length;
	*data = e.type == SCIMG_EXTENT_DATA;
	return 0;
}

/* first non-zero byte of BUF, or LEN */
static size_t first_nonzero(const uint8_t *buf, size_t len)
{
	size_t i;
	for (i = 0; i < len; i++)
		if (buf[i])
			break;
	return i;
}

int scimg_compare(struct scimg_ctx *ctx, struct scimg_image *a,
		  struct scimg_image *b, uint64_t *diff_off)
{
	return scimg_compare_progress(ctx, a, b, diff_off, NULL, NULL);
}

int scimg_compare_progress(struct scimg_ctx *ctx, struct scimg_image *a,
			   struct scimg_image *b, uint64_t *diff_off,
			   scimg_progress_fn progress, void *opaque)
{
	const size_t chunk = 1u << 20;
	uint8_t *ba = NULL, *bb = NULL;
	uint64_t common = a->size < b->size ? a->size : b->size;
	uint64_t total = a->size > b->size ? a->size : b->size;
	uint64_t pos = 0;
	int ret = 0;

	ba = malloc(chunk);
	bb = malloc(chunk);
	if (!ba || !bb) {
		ret = scimg_int_err(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	/* common part, then the tail of the larger image must read as zeros */
	while (pos < common) {
		uint64_t la, lb, n;
		int da, db;

		if ((ret = scimg_int_check_cancel(ctx)) < 0)
			goto out;
		if (progress)
			progress(opaque, pos, total);
		if ((ret = status_at(a, pos, &la, &da)) < 0 ||
		    (ret = status_at(b, pos, &lb, &db)) < 0)
			goto out;
		n = la < lb ? la : lb;
		if (n > common - pos)
			n = common - pos;
		if (!da && !db) {
			pos += n;
			continue;
		}
		if (n > chunk)
			n = chunk;
		if (da && (ret = scimg_image_pread(a, ba, (size_t)n, pos)) < 0)
			goto out;
		if (db && (ret = scimg_image_pread(b, bb, (size_t)n, pos)) < 0)
			goto out;
		if (!da)
			memset(ba, 0, (size_t)n);
		if (!db)
			memset(bb, 0, (size_t)n);
		if (memcmp(ba, bb, (size_t)n) != 0) {
			size_t i = 0;
			while (ba[i] == bb[i])
				i++;
			*diff_off = pos + i;
			ret = 1;
			goto out;
		}
		pos += n;
	}
	{
		struct scimg_image *big = a->size > b->size ? a : b;
		while (pos < big->size) {
			uint64_t l, n;
			int d;
			size_t i;

			if (progress)
				progress(opaque, pos, total);
			if ((ret = status_at(big, pos, &l, &d)) < 0)
				goto out;
			if (!d) {
				pos += l;
				continue;
			}
			n = l < chunk ? l : chunk;
			if ((ret = scimg_image_pread(big, ba, (size_t)n, pos)) < 0)
				goto out;
			i = first_nonzero(ba, (size_t)n);
			if (i < n) {
				*diff_off = pos + i;
				ret = 1;
				goto out;
			}
			pos += n;
		}
	}
	if (progress)
		progress(opaque, total, total);
	ret = 0;
out:
	free(ba);
	free(bb);
	return ret;
}
