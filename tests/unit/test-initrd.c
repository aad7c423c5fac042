/* test-initrd.c - listing kernel modules in initramfs files: early
 * uncompressed cpio + main cpio compressed with gzip, zstd, xz, lzma or not
 * at all; truncated and corrupted variants fail cleanly. */
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "check/check-int.h"
#include "guest/guest.h"
#include "unit.h"

struct buf {
	uint8_t *p;
	size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 4096;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void pad4(struct buf *b)
{
	static const uint8_t z[4];
	put(b, z, (4 - b->n % 4) % 4);
}

static void cpio_add(struct buf *b, const char *name, const char *data, unsigned mode)
{
	char h[111];
	size_t dl = data ? strlen(data) : 0;

	snprintf(h, sizeof(h), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 1u, mode, 0u, 0u, 1u, 0u, (unsigned)dl, 0u, 0u, 0u, 0u,
		 (unsigned)strlen(name) + 1, 0u);
	put(b, h, 110);
	put(b, name, strlen(name) + 1);
	pad4(b);
	if (dl) {
		put(b, data, dl);
		pad4(b);
	}
}

static void main_archive(struct buf *b)
{
	cpio_add(b, "bin", NULL, 040755);
	cpio_add(b, "bin/sh", "#!/bin/sh\necho hi\n", 0100755);
	cpio_add(b, "usr/lib/modules/6.1.0-1-cloud-amd64/kernel/drivers/block/xen-blkfront.ko.xz",
		 "not really a module", 0100644);
	cpio_add(b, "usr/lib/modules/6.1.0-1-cloud-amd64/kernel/drivers/virtio/virtio_pci.ko",
		 "x", 0100644);
	cpio_add(b, "usr/lib/modules/6.1.0-1-cloud-amd64/kernel/drivers/nvme/host/nvme.ko.zst",
		 "", 0100644);
	cpio_add(b, "usr/lib/modules/6.1.0-1-cloud-amd64/modules.dep", "kernel/a.ko:\n", 0100644);
	cpio_add(b, "TRAILER!!!", NULL, 0);
}

static void early_archive(struct buf *b)
{
	static const uint8_t z[512];
	cpio_add(b, "kernel/x86/microcode/GenuineIntel.bin", "microcode", 0100644);
	cpio_add(b, "TRAILER!!!", NULL, 0);
	put(b, z, 512 - b->n % 512);
}

static void squeeze(int kind, const struct buf *in, struct buf *out)
{
	size_t cap = in->n * 2 + 65536;
	uint8_t *o = malloc(cap);
	size_t n = 0;

	if (kind == 1) {
		z_stream z;
		memset(&z, 0, sizeof(z));
		deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
		z.next_in = in->p;
		z.avail_in = (uInt)in->n;
		z.next_out = o;
		z.avail_out = (uInt)cap;
		deflate(&z, Z_FINISH);
		n = cap - z.avail_out;
		deflateEnd(&z);
	} else if (kind == 2) {
		n = ZSTD_compress(o, cap, in->p, in->n, 3);
	} else if (kind == 3) {
		lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in->p, in->n, o, &n, cap);
	} else if (kind == 4) {
		lzma_stream s = LZMA_STREAM_INIT;
		lzma_options_lzma opt;
		lzma_lzma_preset(&opt, 6);
		if (lzma_alone_encoder(&s, &opt) != LZMA_OK)
			abort();
		s.next_in = in->p;
		s.avail_in = in->n;
		s.next_out = o;
		s.avail_out = cap;
		if (lzma_code(&s, LZMA_FINISH) != LZMA_STREAM_END)
			abort();
		n = cap - s.avail_out;
		lzma_end(&s);
	} else {
		memcpy(o, in->p, in->n);
		n = in->n;
	}
	put(out, o, n);
	free(o);
}

static const char *dir;

static char *write_file(const char *name, const void *p, size_t n)
{
	char *path = malloc(strlen(dir) + strlen(name) + 2);
	FILE *f;

	sprintf(path, "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f) {
		fwrite(p, 1, n, f);
		fclose(f);
	}
	return path;
}

static int has(json_object *a, const char *m)
{
	for (size_t i = 0; a && i < json_object_array_length(a); i++)
		if (!strcmp(json_object_get_string(json_object_array_get_idx(a, i)), m))
			return 1;
	return 0;
}

int main(void)
{
	static const char *const names[] = { "none", "gzip", "zstd", "xz", "lzma" };
	char tmpl[] = "/tmp/scimg-test-initrd-XXXXXX";
	struct scimg_ctx *ctx = scimg_ctx_new();
	char m[64];
	int kind;

	dir = mkdtemp(tmpl);
	CHECK(dir != NULL);
	if (!dir)
		return 1;

	scimg_int_sg_modname("a/b/xen-blkfront.ko.xz", m, sizeof(m));
	CHECK(!strcmp(m, "xen_blkfront"));
	scimg_int_sg_modname("virtio_blk", m, sizeof(m));
	CHECK(!strcmp(m, "virtio_blk"));
	scimg_int_sg_modname("nvme.ko", m, sizeof(m));
	CHECK(!strcmp(m, "nvme"));

	for (kind = 0; kind <= 4; kind++) {
		struct buf early = { 0 }, arch = { 0 }, file = { 0 };
		json_object *mods = NULL;
		char *path;
		size_t cut;

		early_archive(&early);
		main_archive(&arch);
		put(&file, early.p, early.n);
		squeeze(kind, &arch, &file);
		path = write_file("initrd", file.p, file.n);
		CHECK(scimg_int_initrd_modules(ctx, path, &mods) == 0);
		if (!mods)
			fprintf(stderr, "%s: %s\n", names[kind], scimg_ctx_errmsg(ctx));
		CHECK(has(mods, "xen_blkfront"));
		CHECK(has(mods, "virtio_pci"));
		CHECK(has(mods, "nvme"));
		CHECK(!has(mods, "virtio_blk"));
		CHECK(mods && json_object_array_length(mods) == 3);
		json_object_put(mods);
		free(path);

		/* every truncation fails cleanly or lists a subset, never crashes */
		for (cut = 1; cut < file.n; cut += file.n / 97 + 1) {
			path = write_file("initrd-cut", file.p, cut);
			mods = NULL;
			if (scimg_int_initrd_modules(ctx, path, &mods) == 0)
				CHECK(mods != NULL);
			json_object_put(mods);
			free(path);
		}
		/* flipped bytes in the compressed part */
		for (cut = early.n; cut < file.n; cut += file.n / 31 + 1) {
			file.p[cut] ^= 0x5a;
			path = write_file("initrd-flip", file.p, file.n);
			mods = NULL;
			(void)scimg_int_initrd_modules(ctx, path, &mods);
			json_object_put(mods);
			free(path);
			file.p[cut] ^= 0x5a;
		}
		free(early.p);
		free(arch.p);
		free(file.p);
	}
	/* a corrupt lz4 segment is named */
	{
		struct buf early = { 0 };
		json_object *mods = NULL;
		char *path;
		early_archive(&early);
		put(&early, "\x02\x21\x4c\x18garbage", 11);
		path = write_file("initrd-lz4", early.p, early.n);
		CHECK(scimg_int_initrd_modules(ctx, path, &mods) < 0);
		CHECK(strstr(scimg_ctx_errmsg(ctx), "lz4") != NULL);
		free(path);
		free(early.p);
	}
	/* lz4 legacy frames (Ubuntu's initramfs, lz4 -l) and bzip2, by the
	 * real tools, through libarchive */
	{
		static const char *const tool[][2] = { { "lz4", "lz4 -q -l -c" }, { "bzip2", "bzip2 -c" } };
		size_t t;
		for (t = 0; t < 2; t++) {
			struct buf early = { 0 }, arch = { 0 };
			json_object *mods = NULL;
			char cmd[1200], *raw, *path;
			FILE *f;
			snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", tool[t][0]);
			if (system(cmd) != 0) {
				printf("skipped: no %s tool\n", tool[t][0]);
				continue;
			}
			main_archive(&arch);
			raw = write_file("main.cpio", arch.p, arch.n);
			early_archive(&early);
			path = write_file("initrd-tool", early.p, early.n);
			snprintf(cmd, sizeof(cmd), "%s '%s' >> '%s'", tool[t][1], raw, path);
			CHECK(system(cmd) == 0);
			CHECK(scimg_int_initrd_modules(ctx, path, &mods) == 0);
			CHECK(mods && json_object_array_length(mods) >= 2);
			if (!mods)
				fprintf(stderr, "%s: %s\n", tool[t][0], scimg_ctx_errmsg(ctx));
			json_object_put(mods);
			/* cut short: an error, not a partial list */
			f = fopen(path, "r+");
			if (f) {
				CHECK(ftruncate(fileno(f), (off_t)(early.n + 40)) == 0);
				fclose(f);
			}
			mods = NULL;
			CHECK(scimg_int_initrd_modules(ctx, path, &mods) < 0 && !mods);
			free(raw);
			free(path);
			free(early.p);
			free(arch.p);
		}
	}
	/* one gzip stream holding two archives, and two gzip members (CoreOS
	 * appends its config so), each after an early archive: every module of
	 * both is listed */
	{
		int members;
		for (members = 0; members < 2; members++) {
			struct buf early = { 0 }, arch = { 0 }, two = { 0 }, file = { 0 };
			json_object *mods = NULL;
			char *path;
			early_archive(&early);
			main_archive(&arch);
			cpio_add(&two, "lib/modules/x/kernel/nvme-core.ko", "y", 0100644);
			cpio_add(&two, "TRAILER!!!", NULL, 0);
			put(&file, early.p, early.n);
			if (members) {
				squeeze(1, &arch, &file);
				squeeze(1, &two, &file);
			} else {
				put(&arch, "\0\0\0\0", 4); /* padding between them */
				put(&arch, two.p, two.n);
				squeeze(1, &arch, &file);
			}
			path = write_file("initrd-multi", file.p, file.n);
			CHECK(scimg_int_initrd_modules(ctx, path, &mods) == 0);
			CHECK(has(mods, "nvme_core") && has(mods, "xen_blkfront"));
			CHECK(mods && json_object_array_length(mods) == 4);
			json_object_put(mods);
			free(path);
			free(early.p);
			free(arch.p);
			free(two.p);
			free(file.p);
		}
	}
	/* an archive that stops at an entry boundary, without its trailer, plain
	 * and compressed: an error, not a partial list */
	{
		int k;
		for (k = 0; k < 2; k++) {
			struct buf early = { 0 }, arch = { 0 }, file = { 0 };
			json_object *mods = NULL;
			char *path;
			early_archive(&early);
			main_archive(&arch);
			arch.n -= 124; /* the trailer */
			put(&file, early.p, early.n);
			squeeze(k, &arch, &file);
			path = write_file("initrd-notrailer", file.p, file.n);
			CHECK(scimg_int_initrd_modules(ctx, path, &mods) < 0 && !mods);
			CHECK(strstr(scimg_ctx_errmsg(ctx), "truncated") != NULL);
			free(path);
			free(early.p);
			free(arch.p);
			free(file.p);
		}
	}
	/* neither cpio nor a known compression */
	{
		struct buf early = { 0 };
		json_object *mods = NULL;
		char *path;
		early_archive(&early);
		put(&early, "\x7f" "ELF\2\1\1\0", 8);
		path = write_file("initrd-elf", early.p, early.n);
		CHECK(scimg_int_initrd_modules(ctx, path, &mods) < 0 && !mods);
		CHECK(strstr(scimg_ctx_errmsg(ctx), "neither a cpio archive") != NULL);
		free(path);
		free(early.p);
	}
	/* a bad magic in the middle of an archive */
	{
		struct buf b = { 0 };
		json_object *mods = NULL;
		char *path;
		main_archive(&b);
		memcpy(b.p + 116, "070799", 6); /* the second header */
		path = write_file("initrd-bad", b.p, b.n);
		CHECK(scimg_int_initrd_modules(ctx, path, &mods) < 0);
		free(path);
		free(b.p);
	}
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		CHECK(system(cmd) == 0);
	}
	scimg_ctx_free(ctx);
	UNIT_DONE();
}
