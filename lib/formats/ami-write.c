/* formats/ami-write.c - write EC2 instance-store AMI bundles as
 * ec2-bundle-image does, in one streaming pass:
 *
 *   tar member PREFIX (ustar; a pax size record past 8 GiB; 10240-byte
 *   records) -> SHA-1 -> gzip -> AES-128-CBC -> PREFIX.part.N (10 MiB each,
 *   N zero-padded to the digits of the part count) -> PREFIX.manifest.xml
 *   (version 2007-10-10, the elements, order and quoting of ec2-ami-tools'
 *   REXML output, signed with RSA-SHA1).
 *
 * The output is a directory (SCIMG_FMT_OUTPUT_DIR): parts go to image.c's
 * temporary directory and the manifest is moved into place last.  Writes
 * must come in increasing order (the copy engine's); unwritten ranges are
 * zeros (the tar member is not sparse: its map would be needed before the
 * data).  Long zero runs still go through SHA-1 (the tar digest covers
 * them), but not through the compressor: the gzip stream is written as raw
 * deflate with our own header and trailer, and a run of zeros becomes
 * copies of one precomputed, self-contained deflate block sequence for
 * ZRUN zeros (after a full flush, so no back-reference crosses it), with
 * the CRC-32 advanced by crc32_combine().  Memory: a few 256 KiB buffers
 * and 20 bytes per part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "ami-int.h"
#include "formats/deflate.h"
#include "package/package.h"

#define CHUNK (256u << 10)
#define TAR_RECORD 10240u
#define ZRUN CHUNK               /* zeros per precomputed deflate sequence */
#define ZRUN_MIN (4 * ZRUN)      /* shorter runs are simply compressed */
#define AMI_ZUNIT (256u << 10)   /* unit compressed on a worker thread */

const char *const scimg_int_ami_create_opts[] = {
	"cert", "privatekey", "ec2cert", "user", "prefix", "arch", "kernel",
	"ramdisk", "product_codes", "bdm", "compression_level", NULL
};

struct ami_writer {
	char *prefix;
	const char *user, *arch, *kernel, *ramdisk, *pcodes;
	struct ami_bdm *bdm;
	size_t nbdm;
	EVP_PKEY *key, *cert, *ec2;
	uint8_t aes_key[16], aes_iv[16];
	char keyhex[33], ivhex[33];
	EVP_MD_CTX *tarsha;
	z_stream zs;
	int zinit;
	int level;           /* gzip compression level */
	int zdirty;          /* zs took input since its last full flush */
	EVP_CIPHER_CTX *cc;
	uint8_t *zbuf, *ebuf, *zeros;
	uLong crc;           /* gzip CRC-32 and length of the tar stream */
	uint32_t isize;
	uint8_t *zblk;       /* ZRUN zeros, raw deflate, ending on a full flush */
	size_t zblk_len;
	uLong zblk_crc;
	uint64_t pos;        /* member bytes fed */
	uint64_t tar_len;    /* tar stream bytes fed */
	int pfd;
	size_t npart;
	uint64_t plen;
	EVP_MD_CTX *psha;
	uint8_t (*pdig)[20];
	size_t pdig_cap;
	uint64_t bundled;
};

/* ---- option checks ---------------------------------------------------- */

static int only_chars(const char *s, const char *extra)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return 0;
	return 1;
}

static int bdm_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ami_bdm *)a)->virt, ((const struct ami_bdm *)b)->virt);
}

static int bdm_add(struct ami_writer *w, const char *v, size_t vl, const char *d,
		   size_t dl)
{
	struct ami_bdm *n;
	size_t i;

	for (i = 0; i < w->nbdm; i++)
		if (strlen(w->bdm[i].virt) == vl && !strncmp(w->bdm[i].virt, v, vl))
			return -EEXIST;
	n = realloc(w->bdm, (w->nbdm + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	w->bdm = n;
	n[w->nbdm].virt = strndup(v, vl);
	n[w->nbdm].device = strndup(d, dl);
	w->nbdm++;
	if (!n[w->nbdm - 1].virt || !n[w->nbdm - 1].device)
		return -ENOMEM;
	return 0;
}

/* "ami=sda1;root=/dev/sda1;ephemeral0=sda2" plus the defaults ami=sda1 and
 * root=/dev/sda1 that ec2-bundle-image's users give. */
static int parse_bdm(struct scimg_image *img, struct ami_writer *w, const char *s)
{
	const char *p = s ? s : "";
	int ret;

	while (*p) {
		const char *e = p + strcspn(p, ";"), *eq = memchr(p, '=', (size_t)(e - p));
		char v[64], d[128];

		if (e == p) {
			p++;
			continue;
		}
		if (!eq || eq == p || eq + 1 == e || (size_t)(eq - p) >= sizeof(v) ||
		    (size_t)(e - eq - 1) >= sizeof(d))
			goto bad;
		snprintf(v, sizeof(v), "%.*s", (int)(eq - p), p);
		snprintf(d, sizeof(d), "%.*s", (int)(e - eq - 1), eq + 1);
		if (!only_chars(v, "_-") || !only_chars(d, "/_-"))
			goto bad;
		ret = bdm_add(w, v, strlen(v), d, strlen(d));
		if (ret == -EEXIST)
			return scimg_int_err(img->ctx, -EINVAL,
					     "ami option bdm: '%s' is mapped twice", v);
		if (ret < 0)
			return scimg_int_err(img->ctx, ret, "out of memory");
		p = *e ? e + 1 : e;
	}
	if ((ret = bdm_add(w, "ami", 3, "sda1", 4)) < 0 && ret != -EEXIST)
		return scimg_int_err(img->ctx, ret, "out of memory");
	if ((ret = bdm_add(w, "root", 4, "/dev/sda1", 9)) < 0 && ret != -EEXIST)
		return scimg_int_err(img->ctx, ret, "out of memory");
	qsort(w->bdm, w->nbdm, sizeof(*w->bdm), bdm_cmp);
	return 0;
bad:
	return scimg_int_err(img->ctx, -EINVAL,
			     "ami option bdm '%s': expected VIRTUAL=DEVICE;... (e.g. ami=sda1;root=/dev/sda1;ephemeral0=sda2)",
			     s);
}

/* ---- the pipeline ----------------------------------------------------- */

static int part_close(struct scimg_image *img, struct ami_writer *w)
{
	unsigned l = 0;
	int ret = 0;

	if (w->pfd < 0)
		return 0;
	if (w->npart >= w->pdig_cap) {
		size_t nc = w->pdig_cap ? w->pdig_cap * 2 : 64;
		uint8_t (*nd)[20] = realloc(w->pdig, nc * sizeof(*nd));
		if (!nd)
			return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		w->pdig = nd;
		w->pdig_cap = nc;
	}
	if (EVP_DigestFinal_ex(w->psha, w->pdig[w->npart], &l) != 1)
		ret = scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	if (ret == 0 && !(img->create_flags & SCIMG_CREATE_NO_SYNC) && fdatasync(w->pfd) < 0)
		ret = scimg_int_err(img->ctx, -errno, "'%s': could not flush part %zu: %s",
				    img->path, w->npart, strerror(errno));
	if (close(w->pfd) < 0 && ret == 0)
		ret = scimg_int_err(img->ctx, -errno, "'%s': part %zu: %s", img->path,
				    w->npart, strerror(errno));
	w->pfd = -1;
	w->npart++;
	w->plen = 0;
	return ret;
}

static int part_write(struct scimg_image *img, struct ami_writer *w,
		      const uint8_t *p, size_t n)
{
	while (n) {
		size_t k;

		if (w->pfd < 0) {
			char name[160];
			int ret;

			if (w->npart >= AMI_MAX_PARTS)
				return scimg_int_err(img->ctx, -EFBIG,
						     "'%s': the bundle would need more than %u parts",
						     img->path, AMI_MAX_PARTS);
			snprintf(name, sizeof(name), "%s.part.%zu", w->prefix, w->npart);
			ret = scimg_int_sink_dir_create(img->ctx, img->out, name,
							"part", &w->pfd);
			if (ret < 0)
				return ret;
			if (EVP_DigestInit_ex(w->psha, EVP_sha1(), NULL) != 1)
				return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
		}
		k = AMI_PART_SIZE - w->plen;
		if (k > n)
			k = n;
		for (size_t done = 0; done < k;) {
			ssize_t r = write(w->pfd, p + done, k - done);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return scimg_int_err(img->ctx, -errno,
						     "'%s': write error in part %zu: %s",
						     img->path, w->npart, strerror(errno));
			}
			done += (size_t)r;
		}
		if (EVP_DigestUpdate(w->psha, p, k) != 1)
			return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
		w->plen += k;
		w->bundled += k;
		p += k;
		n -= k;
		if (w->plen == AMI_PART_SIZE) {
			int ret = part_close(img, w);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

static int enc_feed(struct scimg_image *img, struct ami_writer *w,
		    const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n < CHUNK ? n : CHUNK;
		int outl = 0, ret;

		if (EVP_EncryptUpdate(w->cc, w->ebuf, &outl, p, (int)k) != 1)
			return scimg_int_err(img->ctx, -EIO, "AES encryption failed");
		if ((ret = part_write(img, w, w->ebuf, (size_t)outl)) < 0)
			return ret;
		p += k;
		n -= k;
	}
	return 0;
}

static int z_run(struct scimg_image *img, struct ami_writer *w, int flush)
{
	int zr, ret;

	do {
		w->zs.next_out = w->zbuf;
		w->zs.avail_out = CHUNK;
		zr = deflate(&w->zs, flush);
		if (zr == Z_STREAM_ERROR)
			return scimg_int_err(img->ctx, -EIO, "gzip compression failed");
		if ((ret = enc_feed(img, w, w->zbuf, CHUNK - w->zs.avail_out)) < 0)
			return ret;
	} while (w->zs.avail_in > 0 || (flush == Z_FINISH && zr != Z_STREAM_END) ||
		 w->zs.avail_out == 0);
	return 0;
}

/* End the serial stream's output on a byte boundary with nothing after it
 * referring back, so that self-contained deflate blocks can follow. */
static int z_full_flush(struct scimg_image *img, struct ami_writer *w)
{
	int ret;

	if (!w->zdirty)
		return 0;
	w->zs.next_in = NULL;
	w->zs.avail_in = 0;
	if ((ret = z_run(img, w, Z_FULL_FLUSH)) < 0)
		return ret;
	w->zdirty = 0;
	return 0;
}

static int tar_feed(struct scimg_image *img, struct ami_writer *w,
		    const void *buf, size_t n)
{
	const uint8_t *p = buf;
	int ret;

	if (EVP_DigestUpdate(w->tarsha, p, n) != 1)
		return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	w->tar_len += n;
	w->isize += (uint32_t)n;
	if (n)
		w->zdirty = 1;
	while (n) {
		size_t k = n < (1u << 30) ? n : (1u << 30);
		w->crc = crc32(w->crc, p, (uInt)k);
		w->zs.next_in = (Bytef *)p;
		w->zs.avail_in = (uInt)k;
		if ((ret = z_run(img, w, Z_NO_FLUSH)) < 0)
			return ret;
		p += k;
		n -= k;
	}
	return 0;
}

static int feed_zeros(struct scimg_image *img, struct ami_writer *w, uint64_t n)
{
	int ret;

	if (n >= ZRUN_MIN) {
		uint64_t q = n / ZRUN, i;

		/* SHA-1 must see them; the compressor need not */
		for (i = 0; i < q; i++) {
			if ((i & 63) == 0 && (ret = scimg_int_check_cancel(img->ctx)) < 0)
				return ret;
			if (EVP_DigestUpdate(w->tarsha, w->zeros, ZRUN) != 1)
				return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
		}
		w->tar_len += q * ZRUN;
		if ((ret = z_full_flush(img, w)) < 0)
			return ret;
		for (i = 0; i < q; i++) {
			if ((ret = enc_feed(img, w, w->zblk, w->zblk_len)) < 0)
				return ret;
			w->crc = crc32_combine(w->crc, w->zblk_crc, ZRUN);
			w->isize += ZRUN;
		}
		n -= q * ZRUN;
	}
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		if ((ret = scimg_int_check_cancel(img->ctx)) < 0)
			return ret;
		if ((ret = tar_feed(img, w, w->zeros, k)) < 0)
			return ret;
		n -= k;
	}
	return 0;
}

/* ---- tar header ------------------------------------------------------- */

static int write_tar_header(struct scimg_image *img, struct ami_writer *w)
{
	uint8_t h[2 * USTAR_BLOCK];
	uint64_t now = (uint64_t)time(NULL);
	int ret;

	if (img->size >= (UINT64_C(1) << 33)) {
		/* a pax size record (the header's base-256 size says it too) */
		scimg_int_ustar_pax_size(h, w->prefix, img->size, now);
		if ((ret = tar_feed(img, w, h, sizeof(h))) < 0)
			return ret;
	}
	scimg_int_ustar_header(h, w->prefix, '0', img->size, now, 0);
	return tar_feed(img, w, h, USTAR_BLOCK);
}

/* ---- create / write / finish ------------------------------------------ */

void scimg_int_ami_writer_close(struct scimg_image *img)
{
	struct ami_writer *w = img->priv;
	size_t i;

	if (!w)
		return;
	if (w->pfd >= 0)
		close(w->pfd);
	if (w->zinit)
		deflateEnd(&w->zs);
	EVP_MD_CTX_free(w->tarsha);
	EVP_MD_CTX_free(w->psha);
	EVP_CIPHER_CTX_free(w->cc);
	EVP_PKEY_free(w->key);
	EVP_PKEY_free(w->cert);
	EVP_PKEY_free(w->ec2);
	for (i = 0; i < w->nbdm; i++) {
		free(w->bdm[i].virt);
		free(w->bdm[i].device);
	}
	free(w->bdm);
	free(w->prefix);
	free(w->zbuf);
	free(w->ebuf);
	free(w->zeros);
	free(w->zblk);
	free(w->pdig);
	OPENSSL_cleanse(w->aes_key, sizeof(w->aes_key));
	OPENSSL_cleanse(w->keyhex, sizeof(w->keyhex));
	free(w);
	img->priv = NULL;
}

/* ZRUN zeros as raw deflate blocks from a fresh stream, ended by a full
 * flush: byte-aligned, non-final, referring to nothing before it. */
static int make_zblk(struct scimg_image *img, struct ami_writer *w)
{
	z_stream z;
	uInt cap = ZRUN / 64;
	int zr;

	memset(&z, 0, sizeof(z));
	w->zblk = malloc(cap);
	if (!w->zblk || deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 9,
				     Z_DEFAULT_STRATEGY) != Z_OK)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	z.next_in = w->zeros;
	z.avail_in = ZRUN;
	z.next_out = w->zblk;
	z.avail_out = cap;
	zr = deflate(&z, Z_FULL_FLUSH);
	w->zblk_len = cap - z.avail_out;
	deflateEnd(&z);
	if (zr != Z_OK || z.avail_in != 0 || z.avail_out == 0)
		return scimg_int_err(img->ctx, -EIO, "could not prepare the compressed zero block");
	w->zblk_crc = crc32(crc32(0, NULL, 0), w->zeros, ZRUN);
	return 0;
}

static int need_opt(struct scimg_image *img, const struct scimg_opts *o,
		    const char *key, const char *what, const char **out)
{
	*out = scimg_int_opts_get(o, key);
	if (!*out || !**out)
		return scimg_int_err(img->ctx, -EINVAL,
				     "format 'ami' needs -o %s=%s", key, what);
	return 0;
}

int scimg_int_ami_create(struct scimg_image *img, const struct scimg_opts *o)
{
	struct ami_writer *w;
	const char *certf, *keyf, *ec2f, *prefix, *lvl;
	long level = 6;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	w->pfd = -1;
	img->priv = w;
	if ((ret = need_opt(img, o, "cert", "FILE (your X.509 certificate, PEM)", &certf)) < 0 ||
	    (ret = need_opt(img, o, "privatekey", "FILE (your RSA private key, PEM)", &keyf)) < 0 ||
	    (ret = need_opt(img, o, "ec2cert", "FILE (the EC2 bundling certificate of the region, PEM)", &ec2f)) < 0 ||
	    (ret = need_opt(img, o, "user", "ACCOUNT (your AWS account number)", &w->user)) < 0)
		goto fail;
	if (!only_chars(w->user, "-") || strlen(w->user) > 64) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "ami option user '%s': expected an AWS account number (digits, optional dashes)",
				    w->user);
		goto fail;
	}
	prefix = scimg_int_opts_get(o, "prefix");
	if (!prefix)
		prefix = "image";
	if (!only_chars(prefix, "._-") || strlen(prefix) > 80 || !strcmp(prefix, ".") ||
	    !strcmp(prefix, "..")) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "ami option prefix '%s': expected 1 to 80 letters, digits, '.', '_' or '-'",
				    prefix);
		goto fail;
	}
	w->prefix = strdup(prefix);
	w->arch = scimg_int_opts_get(o, "arch");
	if (!w->arch)
		w->arch = "x86_64";
	if (strcmp(w->arch, "i386") && strcmp(w->arch, "x86_64") && strcmp(w->arch, "arm64")) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "ami option arch '%s': expected i386, x86_64 or arm64", w->arch);
		goto fail;
	}
	w->kernel = scimg_int_opts_get(o, "kernel");
	w->ramdisk = scimg_int_opts_get(o, "ramdisk");
	w->pcodes = scimg_int_opts_get(o, "product_codes");
	if ((w->kernel && !only_chars(w->kernel, "-")) ||
	    (w->ramdisk && !only_chars(w->ramdisk, "-")) ||
	    (w->pcodes && !only_chars(w->pcodes, ";"))) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "ami options kernel, ramdisk: expected an id such as aki-1a2b3c4d; product_codes: CODE;CODE...");
		goto fail;
	}
	if ((ret = parse_bdm(img, w, scimg_int_opts_get(o, "bdm"))) < 0)
		goto fail;
	lvl = scimg_int_opts_get(o, "compression_level");
	if (lvl) {
		char *end;
		level = strtol(lvl, &end, 10);
		if (*end || level < 1 || level > 9) {
			ret = scimg_int_err(img->ctx, -EINVAL,
					    "ami option compression_level '%s': expected 1 to 9", lvl);
			goto fail;
		}
	}
	if ((ret = scimg_int_ami_load_cert(img->ctx, certf, "cert", &w->cert)) < 0 ||
	    (ret = scimg_int_ami_load_key(img->ctx, keyf, "privatekey", &w->key)) < 0 ||
	    (ret = scimg_int_ami_load_cert(img->ctx, ec2f, "ec2cert", &w->ec2)) < 0)
		goto fail;
	if (EVP_PKEY_eq(w->cert, w->key) != 1) {
		ret = scimg_int_err(img->ctx, -EINVAL,
				    "ami: privatekey '%s' is not the key of cert '%s'", keyf, certf);
		goto fail;
	}
	if (RAND_bytes(w->aes_key, 16) != 1 || RAND_bytes(w->aes_iv, 16) != 1) {
		ret = scimg_int_err(img->ctx, -EIO, "could not get random bytes for the AES key");
		goto fail;
	}
	scimg_int_ami_hex(w->aes_key, 16, w->keyhex);
	scimg_int_ami_hex(w->aes_iv, 16, w->ivhex);
	w->tarsha = EVP_MD_CTX_new();
	w->psha = EVP_MD_CTX_new();
	w->cc = EVP_CIPHER_CTX_new();
	w->zbuf = malloc(CHUNK);
	w->ebuf = malloc(CHUNK + 32);
	w->zeros = calloc(1, CHUNK);
	if (!w->prefix || !w->tarsha || !w->psha || !w->cc || !w->zbuf || !w->ebuf ||
	    !w->zeros) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	if (EVP_DigestInit_ex(w->tarsha, EVP_sha1(), NULL) != 1 ||
	    EVP_EncryptInit_ex(w->cc, EVP_aes_128_cbc(), NULL, w->aes_key, w->aes_iv) != 1) {
		ret = scimg_int_err(img->ctx, -EIO, "could not set up SHA-1 and AES-128-CBC");
		goto fail;
	}
	if ((ret = make_zblk(img, w)) < 0)
		goto fail;
	/* raw deflate inside our own gzip header and trailer (RFC 1952):
	 * what gunzip, and so ec2-unbundle, expects */
	if (deflateInit2(&w->zs, (int)level, Z_DEFLATED, -MAX_WBITS, 9,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto fail;
	}
	w->zinit = 1;
	w->level = (int)level;
	w->crc = crc32(0, NULL, 0);
	{
		static const uint8_t gz[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
		if ((ret = enc_feed(img, w, gz, sizeof(gz))) < 0)
			goto fail;
	}
	if ((ret = write_tar_header(img, w)) < 0)
		goto fail;
	return 0;
fail:
	scimg_int_ami_writer_close(img);
	return ret;
}

/* Writes come in increasing order; the gap before OFF reads as zeros. */
static int seek_to(struct scimg_image *img, struct ami_writer *w, uint64_t off)
{
	if (off < w->pos)
		return scimg_int_err(img->ctx, -EINVAL,
				     "'%s': AMI bundles are written in increasing order (write at %llu after %llu)",
				     img->path, (unsigned long long)off,
				     (unsigned long long)w->pos);
	return feed_zeros(img, w, off - w->pos);
}

int scimg_int_ami_pwrite(struct scimg_image *img, const void *buf, size_t len,
			 uint64_t off)
{
	struct ami_writer *w = img->priv;
	int ret;

	if ((ret = seek_to(img, w, off)) < 0)
		return ret;
	if ((ret = tar_feed(img, w, buf, len)) < 0)
		return ret;
	w->pos = off + len;
	return 0;
}

/* ---- compression on the convert engine's workers ----------------------
 *
 * Each unit of the image becomes a self-contained piece of the one gzip
 * member (as pigz makes them): raw deflate from a fresh stream, ended by a
 * sync flush, so it starts and ends on a byte boundary and refers to
 * nothing before it; data that a fast pass cannot shrink is stored.  The
 * writer then only digests the plain bytes (SHA-1, CRC-32), encrypts and
 * writes, in order. */

/* A fast deflate pass over three 8 KiB samples (start, middle, end): a
 * unit none of whose samples shrinks is random or already compressed data
 * and is stored, at a tenth of the cost of trying the whole unit.  A unit
 * that is only partly such data is compressed. */
static int probably_compressible(const uint8_t *in, size_t len, void *scratch, size_t cap)
{
	const size_t sample = 8192;
	size_t i;

	if (len < 4 * sample)
		return scimg_int_deflate_shrinks(in, len, scratch, cap);
	for (i = 0; i < 3; i++) {
		size_t at = i == 0 ? 0 : i == 1 ? (len / 2) & ~(size_t)4095 : len - sample;
		if (scimg_int_deflate_shrinks(in + at, sample, scratch, cap))
			return 1;
	}
	return 0;
}

uint32_t scimg_int_ami_compress_unit(struct scimg_image *img)
{
	(void)img;
	return AMI_ZUNIT;
}

int scimg_int_ami_compress(struct scimg_image *img, const void *in, size_t len,
			   void *out, size_t *outlen)
{
	struct ami_writer *w = img->priv;
	size_t cap = *outlen, stored = len + 5 * (len / 65535 + 1);
	z_stream *z;
	int zr;

	if (cap < stored)
		return -EINVAL;
	if (len && probably_compressible(in, len, out, cap)) {
		z = scimg_int_thread_gzip_zstream(w->level);
		if (!z)
			return -ENOMEM;
		z->next_in = (Bytef *)in;
		z->avail_in = (uInt)len;
		z->next_out = out;
		z->avail_out = (uInt)cap;
		zr = deflate(z, Z_SYNC_FLUSH);
		if (zr == Z_OK && z->avail_in == 0 && z->avail_out > 0 &&
		    cap - z->avail_out < stored) {
			*outlen = cap - z->avail_out;
			return 0;
		}
	}
	*outlen = scimg_int_deflate_stored(in, len, out);
	return 0;
}

int scimg_int_ami_pwrite_compressed_src(struct scimg_image *img, uint64_t off,
					const void *data, size_t clen,
					const void *in, size_t len)
{
	struct ami_writer *w = img->priv;
	int ret;

	if ((ret = seek_to(img, w, off)) < 0)
		return ret;
	if (EVP_DigestUpdate(w->tarsha, in, len) != 1)
		return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	w->tar_len += len;
	w->isize += (uint32_t)len;
	w->crc = crc32(w->crc, in, (uInt)len);
	if ((ret = z_full_flush(img, w)) < 0 ||
	    (ret = enc_feed(img, w, data, clen)) < 0)
		return ret;
	w->pos = off + len;
	return 0;
}

/* ---- the manifest ----------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 4096);
		char *np;
		while (nc < b->len + n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* <TAG>escaped text</TAG> */
static void sb_el(struct sbuf *b, const char *tag, const char *attr, const char *text)
{
	sb_str(b, "<");
	sb_str(b, tag);
	if (attr) {
		sb_str(b, " ");
		sb_str(b, attr);
	}
	sb_str(b, ">");
	for (const char *s = text; *s; s++) {
		if (*s == '&')
			sb_str(b, "&amp;");
		else if (*s == '<')
			sb_str(b, "&lt;");
		else if (*s == '>')
			sb_str(b, "&gt;");
		else
			sb_add(b, s, 1);
	}
	sb_str(b, "</");
	sb_str(b, tag);
	sb_str(b, ">");
}

static int rsa_encrypt_hex(struct scimg_image *img, EVP_PKEY *pub, const char *text,
			   char **out)
{
	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(pub, NULL);
	uint8_t buf[AMI_MAX_RSA_BYTES];
	size_t outlen = sizeof(buf);
	int ok;

	*out = NULL;
	if (!pc)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ok = (size_t)EVP_PKEY_get_size(pub) <= sizeof(buf) &&
	     EVP_PKEY_encrypt_init(pc) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	     EVP_PKEY_encrypt(pc, buf, &outlen, (const uint8_t *)text, strlen(text)) == 1;
	EVP_PKEY_CTX_free(pc);
	if (!ok)
		return scimg_int_err(img->ctx, -EIO, "RSA encryption of the AES key failed");
	*out = malloc(outlen * 2 + 1);
	if (!*out)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	scimg_int_ami_hex(buf, outlen, *out);
	return 0;
}

static int sign_hex(struct scimg_image *img, EVP_PKEY *key, const char *a, size_t al,
		    const char *b, size_t bl, char **out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[AMI_MAX_RSA_BYTES];
	size_t sl = sizeof(sig);
	int ok;

	*out = NULL;
	if (!md)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	ok = (size_t)EVP_PKEY_get_size(key) <= sizeof(sig) &&
	     EVP_DigestSignInit(md, NULL, EVP_sha1(), NULL, key) == 1 &&
	     EVP_DigestSignUpdate(md, a, al) == 1 &&
	     EVP_DigestSignUpdate(md, b, bl) == 1 &&
	     EVP_DigestSignFinal(md, sig, &sl) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return scimg_int_err(img->ctx, -EIO, "signing the manifest failed");
	*out = malloc(sl * 2 + 1);
	if (!*out)
		return scimg_int_err(img->ctx, -ENOMEM, "out of memory");
	scimg_int_ami_hex(sig, sl, *out);
	return 0;
}

static int write_manifest(struct scimg_image *img, struct ami_writer *w,
			  const uint8_t tar_digest[20], unsigned width)
{
	struct sbuf mc = { 0 }, im = { 0 }, all = { 0 };
	char *uk = NULL, *ek = NULL, *uiv = NULL, *eiv = NULL, *sig = NULL;
	char num[64], hex[41], name[160];
	size_t i;
	int fd = -1, ret;

	if ((ret = rsa_encrypt_hex(img, w->cert, w->keyhex, &uk)) < 0 ||
	    (ret = rsa_encrypt_hex(img, w->ec2, w->keyhex, &ek)) < 0 ||
	    (ret = rsa_encrypt_hex(img, w->cert, w->ivhex, &uiv)) < 0 ||
	    (ret = rsa_encrypt_hex(img, w->ec2, w->ivhex, &eiv)) < 0)
		goto out;

	/* machine_configuration, in ec2-ami-tools' order */
	sb_str(&mc, "<machine_configuration>");
	sb_el(&mc, "architecture", NULL, w->arch);
	sb_str(&mc, "<block_device_mapping>");
	for (i = 0; i < w->nbdm; i++) {
		sb_str(&mc, "<mapping>");
		sb_el(&mc, "virtual", NULL, w->bdm[i].virt);
		sb_el(&mc, "device", NULL, w->bdm[i].device);
		sb_str(&mc, "</mapping>");
	}
	sb_str(&mc, "</block_device_mapping>");
	if (w->kernel)
		sb_el(&mc, "kernel_id", NULL, w->kernel);
	if (w->ramdisk)
		sb_el(&mc, "ramdisk_id", NULL, w->ramdisk);
	if (w->pcodes && *w->pcodes) {
		const char *p = w->pcodes;
		sb_str(&mc, "<product_codes>");
		while (*p) {
			size_t l = strcspn(p, ";");
			char code[128];
			if (l && l < sizeof(code)) {
				snprintf(code, sizeof(code), "%.*s", (int)l, p);
				sb_el(&mc, "product_code", NULL, code);
			}
			p += l;
			if (*p)
				p++;
		}
		sb_str(&mc, "</product_codes>");
	}
	sb_str(&mc, "</machine_configuration>");

	/* image */
	sb_str(&im, "<image>");
	sb_el(&im, "name", NULL, w->prefix);
	sb_el(&im, "user", NULL, w->user);
	sb_el(&im, "type", NULL, "machine");
	scimg_int_ami_hex(tar_digest, 20, hex);
	sb_el(&im, "digest", "algorithm='SHA1'", hex);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)img->size);
	sb_el(&im, "size", NULL, num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)w->bundled);
	sb_el(&im, "bundled_size", NULL, num);
	sb_el(&im, "ec2_encrypted_key", "algorithm='AES-128-CBC'", ek);
	sb_el(&im, "user_encrypted_key", "algorithm='AES-128-CBC'", uk);
	sb_el(&im, "ec2_encrypted_iv", NULL, eiv);
	sb_el(&im, "user_encrypted_iv", NULL, uiv);
	snprintf(num, sizeof(num), "<parts count='%zu'>", w->npart);
	sb_str(&im, num);
	for (i = 0; i < w->npart; i++) {
		snprintf(num, sizeof(num), "<part index='%zu'>", i);
		sb_str(&im, num);
		snprintf(name, sizeof(name), "%s.part.%0*zu", w->prefix, (int)width, i);
		sb_el(&im, "filename", NULL, name);
		scimg_int_ami_hex(w->pdig[i], 20, hex);
		sb_el(&im, "digest", "algorithm='SHA1'", hex);
		sb_str(&im, "</part>");
	}
	sb_str(&im, "</parts></image>");
	if (mc.oom || im.oom) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	if ((ret = sign_hex(img, w->key, mc.p, mc.len, im.p, im.len, &sig)) < 0)
		goto out;

	/* REXML's to_s: declaration with single quotes, no newlines */
	sb_str(&all, "<?xml version='1.0'?><manifest>");
	sb_el(&all, "version", NULL, "2007-10-10");
	sb_str(&all, "<bundler>");
	sb_el(&all, "name", NULL, "scimg");
	sb_el(&all, "version", NULL, SCIMG_VERSION_STRING);
	sb_el(&all, "release", NULL, "0");
	sb_str(&all, "</bundler>");
	sb_add(&all, mc.p, mc.len);
	sb_add(&all, im.p, im.len);
	sb_el(&all, "signature", NULL, sig);
	sb_str(&all, "</manifest>");
	if (all.oom) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(name, sizeof(name), "%s.manifest.xml", w->prefix);
	if ((ret = scimg_int_sink_dir_create(img->ctx, img->out, name, NULL, &fd)) < 0)
		goto out;
	for (size_t done = 0; done < all.len;) {
		ssize_t r = write(fd, all.p + done, all.len - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = scimg_int_err(img->ctx, -errno, "'%s': writing '%s': %s",
					    img->path, name, strerror(errno));
			goto out;
		}
		done += (size_t)r;
	}
	if (fdatasync(fd) < 0) {
		ret = scimg_int_err(img->ctx, -errno, "'%s': could not flush '%s': %s",
				    img->path, name, strerror(errno));
		goto out;
	}
	free(img->out_last);
	img->out_last = strdup(name);
	if (!img->out_last) {
		ret = scimg_int_err(img->ctx, -ENOMEM, "out of memory");
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(uk);
	free(ek);
	free(uiv);
	free(eiv);
	free(sig);
	free(mc.p);
	free(im.p);
	free(all.p);
	return ret;
}

int scimg_int_ami_finish(struct scimg_image *img)
{
	struct ami_writer *w = img->priv;
	uint8_t md[20];
	unsigned mdl = 0, width = 1;
	int outl = 0, ret;
	uint64_t pad;
	size_t i;

	if ((ret = feed_zeros(img, w, img->size - w->pos)) < 0)
		return ret;
	w->pos = img->size;
	/* pad the member to 512, two zero blocks, pad to the 10240-byte
	 * record as GNU tar does */
	pad = (512 - img->size % 512) % 512 + 1024;
	if ((ret = feed_zeros(img, w, pad)) < 0)
		return ret;
	pad = (TAR_RECORD - w->tar_len % TAR_RECORD) % TAR_RECORD;
	if ((ret = feed_zeros(img, w, pad)) < 0)
		return ret;
	if (EVP_DigestFinal_ex(w->tarsha, md, &mdl) != 1)
		return scimg_int_err(img->ctx, -EIO, "SHA-1 failed");
	w->zs.next_in = NULL;
	w->zs.avail_in = 0;
	if ((ret = z_run(img, w, Z_FINISH)) < 0)
		return ret;
	{
		uint8_t tr[8];
		scimg_put_le32(tr, (uint32_t)w->crc);
		scimg_put_le32(tr + 4, w->isize);
		if ((ret = enc_feed(img, w, tr, sizeof(tr))) < 0)
			return ret;
	}
	if (EVP_EncryptFinal_ex(w->cc, w->ebuf, &outl) != 1)
		return scimg_int_err(img->ctx, -EIO, "AES encryption failed");
	if ((ret = part_write(img, w, w->ebuf, (size_t)outl)) < 0 ||
	    (ret = part_close(img, w)) < 0)
		return ret;
	/* final part names: the index zero-padded to the digits of the count */
	for (size_t n = w->npart; n >= 10; n /= 10)
		width++;
	if (width > 1) {
		for (i = 0; i < w->npart; i++) {
			char from[160], to[160];
			snprintf(from, sizeof(from), "%s.part.%zu", w->prefix, i);
			snprintf(to, sizeof(to), "%s.part.%0*zu", w->prefix, (int)width, i);
			if (strcmp(from, to) &&
			    (ret = scimg_int_sink_dir_rename(img->ctx, img->out, from, to)) < 0)
				return ret;
		}
	}
	return write_manifest(img, w, md, width);
}
