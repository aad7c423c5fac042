/* test-qcow2-header.c - qcow2 header validation (qcow2-header.c). */
#include <stdlib.h>
#include <string.h>

#include "scimg-int.h"
#include "formats/qcow2.h"
#include "unit.h"

#define CS 65536
#define FILE_SIZE (UINT64_C(16) * CS)

static uint8_t buf[CS];

/* A valid v3 image: 1 GiB, 64 KiB clusters, L1 at cluster 3, refcount
 * table at cluster 1, header extensions after the 112-byte header. */
static void make_v3(void)
{
	memset(buf, 0, sizeof(buf));
	scimg_put_be32(buf, Q2_MAGIC);
	scimg_put_be32(buf + 4, 3);
	scimg_put_be32(buf + 20, 16);
	scimg_put_be64(buf + 24, UINT64_C(1) << 30);
	scimg_put_be32(buf + 36, 2);
	scimg_put_be64(buf + 40, 3 * CS);
	scimg_put_be64(buf + 48, 1 * CS);
	scimg_put_be32(buf + 56, 1);
	scimg_put_be32(buf + 96, 4);
	scimg_put_be32(buf + 100, 112);
}

static void make_v2(void)
{
	make_v3();
	scimg_put_be32(buf + 4, 2);
	memset(buf + 72, 0, 40);
}

/* Add a header extension at *OFF. */
static void add_ext(size_t *off, uint32_t type, const void *data, uint32_t len)
{
	scimg_put_be32(buf + *off, type);
	scimg_put_be32(buf + *off + 4, len);
	memcpy(buf + *off + 8, data, len);
	*off += 8 + ((len + 7) & ~7u);
}

static struct scimg_ctx *ctx;
static struct q2_header h;

static int parse(uint64_t file_size)
{
	int ret;

	scimg_int_qcow2_header_free(&h);
	scimg_ctx_clear_error(ctx);
	ret = scimg_int_qcow2_parse_header(ctx, "t.qcow2", buf, sizeof(buf), file_size, &h);
	return ret;
}

static int err_has(const char *s)
{
	const char *m = scimg_ctx_errmsg(ctx);
	if (!strstr(m, s)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", m, s);
		return 0;
	}
	return 1;
}

int main(void)
{
	size_t off;

	ctx = scimg_ctx_new();

	/* valid v3 and v2 */
	make_v3();
	CHECK(parse(FILE_SIZE) == 0);
	CHECK(h.version == 3 && h.cluster_size == CS && h.l1_needed == 2 && h.l2_bits == 13);
	CHECK(h.refcount_order == 4 && !h.extended_l2 && h.compression_type == 0);
	make_v2();
	CHECK(parse(FILE_SIZE) == 0);
	CHECK(h.version == 2 && h.header_length == 72 && h.refcount_order == 4);

	/* magic, version: qcow v1 is named as such */
	make_v3();
	buf[0] = 'X';
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("magic") && err_has("offset 0"));
	make_v3();
	scimg_put_be32(buf + 4, 1);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("qcow version 1"));
	scimg_put_be32(buf + 4, 4);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("version at offset 4 is 4"));

	/* cluster_bits 9..21 */
	make_v3();
	scimg_put_be32(buf + 20, 30);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("cluster_bits at offset 20 is 30"));
	scimg_put_be32(buf + 20, 8);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("cluster_bits"));

	/* file shorter than a cluster */
	make_v3();
	CHECK(parse(1000) == -EINVAL && err_has("shorter than the qcow2 header cluster"));
	CHECK(parse(50) == -EINVAL && err_has("shorter than the 72-byte"));

	/* header_length */
	make_v3();
	scimg_put_be32(buf + 100, 100);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("header_length at offset 100"));
	scimg_put_be32(buf + 100, 113);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("header_length"));

	/* refcount_order 0..6 */
	make_v3();
	scimg_put_be32(buf + 96, 0);
	CHECK(parse(FILE_SIZE) == 0);
	scimg_put_be32(buf + 96, 6);
	CHECK(parse(FILE_SIZE) == 0);
	scimg_put_be32(buf + 96, 7);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("refcount_order at offset 96 is 7"));

	/* encryption refused */
	make_v3();
	scimg_put_be32(buf + 32, 2);
	CHECK(parse(FILE_SIZE) == -ENOTSUP && err_has("encrypted") && err_has("LUKS"));
	scimg_put_be32(buf + 32, 9);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("crypt_method"));

	/* l1_size: too small for the size, too large, table past EOF */
	make_v3();
	scimg_put_be32(buf + 36, 1);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_size at offset 36 is 1, expected at least 2"));
	scimg_put_be32(buf + 36, 0xffffffffu);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_size") && err_has("32 MiB"));
	scimg_put_be32(buf + 36, 2);
	scimg_put_be64(buf + 40, 15 * CS + 8192);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_table_offset") && err_has("multiple of the cluster size"));
	scimg_put_be64(buf + 40, 16 * CS);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_table_offset") && err_has("past the end of the file"));
	/* L1 table overlapping the header or the refcount table */
	scimg_put_be64(buf + 40, 0);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_table_offset") && err_has("overlaps the header"));
	scimg_put_be64(buf + 40, CS);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("overlaps the refcount table"));

	/* size limit, refcount table */
	make_v3();
	scimg_put_be64(buf + 24, UINT64_MAX);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("size at offset 24"));
	make_v3();
	scimg_put_be32(buf + 56, 0);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("refcount_table_clusters at offset 56 is 0"));
	scimg_put_be32(buf + 56, 1000);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("refcount_table_clusters"));
	make_v3();
	scimg_put_be64(buf + 48, UINT64_C(1) << 62);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("refcount_table_offset"));

	/* snapshots */
	make_v3();
	scimg_put_be32(buf + 60, 70000);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("nb_snapshots"));
	scimg_put_be32(buf + 60, 1);
	scimg_put_be64(buf + 64, 100);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("snapshots_offset"));

	/* unknown incompatible bit, named from the feature table */
	make_v3();
	{
		uint8_t ft[48];
		memset(ft, 0, sizeof(ft));
		ft[0] = 0;
		ft[1] = 9;
		memcpy(ft + 2, "shiny feature", 13);
		off = 112;
		add_ext(&off, Q2_EXT_FEATURE_TABLE, ft, sizeof(ft));
	}
	scimg_put_be64(buf + 72, UINT64_C(1) << 9);
	CHECK(parse(FILE_SIZE) == -ENOTSUP && err_has("unknown bit 9") && err_has("shiny feature"));
	scimg_put_be64(buf + 72, UINT64_C(1) << 12);
	CHECK(parse(FILE_SIZE) == -ENOTSUP && err_has("unknown bit 12 (unknown)"));
	/* dirty and corrupt are fine when reading */
	scimg_put_be64(buf + 72, Q2_INCOMPAT_DIRTY | Q2_INCOMPAT_CORRUPT);
	CHECK(parse(FILE_SIZE) == 0);

	/* compression type field vs bit 3 */
	make_v3();
	scimg_put_be32(buf + 100, 112);
	buf[104] = 1;
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("compression_type") && err_has("bit 3"));
	scimg_put_be64(buf + 72, Q2_INCOMPAT_COMPRESSION);
	CHECK(parse(FILE_SIZE) == 0 && h.compression_type == Q2_COMPRESSION_ZSTD);
	buf[104] = 7;
	CHECK(parse(FILE_SIZE) == -ENOTSUP && err_has("compression_type"));
	buf[104] = 0;
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("compression_type"));

	/* extended L2 needs >= 16 KiB clusters */
	make_v3();
	scimg_put_be64(buf + 72, Q2_INCOMPAT_EXTL2);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("l1_size"));
	scimg_put_be32(buf + 36, 4);
	CHECK(parse(FILE_SIZE) == 0 && h.extended_l2 && h.l2_bits == 12);
	scimg_put_be32(buf + 20, 13);
	scimg_put_be64(buf + 40, 6 * 8192);
	scimg_put_be64(buf + 48, 2 * 8192);
	scimg_put_be32(buf + 36, 64);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("extended L2"));

	/* extensions: backing format, data file, overflow, duplicates */
	make_v3();
	off = 112;
	add_ext(&off, Q2_EXT_BACKING_FORMAT, "qcow2", 5);
	memcpy(buf + 1024, "base.qcow2", 10);
	scimg_put_be64(buf + 8, 1024);
	scimg_put_be32(buf + 16, 10);
	CHECK(parse(FILE_SIZE) == 0 && h.backing_file && !strcmp(h.backing_file, "base.qcow2") &&
	      h.backing_format && !strcmp(h.backing_format, "qcow2"));
	/* backing name longer than 1023 or outside the cluster */
	scimg_put_be32(buf + 16, 2000);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("backing_file_size at offset 16"));
	scimg_put_be32(buf + 16, 10);
	scimg_put_be64(buf + 8, CS + 5);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("backing_file_offset at offset 8"));
	/* an extension running into the backing file name */
	scimg_put_be64(buf + 8, 120);
	memcpy(buf + 120, "base.qcow2", 10);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("header extension"));
	/* a huge extension length */
	make_v3();
	scimg_put_be32(buf + 112, 0x12345678);
	scimg_put_be32(buf + 116, 0xfffffff0u);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("header extension length at offset 116"));
	/* duplicate backing format */
	make_v3();
	off = 112;
	add_ext(&off, Q2_EXT_BACKING_FORMAT, "raw", 3);
	add_ext(&off, Q2_EXT_BACKING_FORMAT, "raw", 3);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("appears twice"));
	/* NUL inside a name */
	make_v3();
	off = 112;
	add_ext(&off, Q2_EXT_BACKING_FORMAT, "ra\0w", 4);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("NUL"));

	/* external data file: bit and extension must agree */
	make_v3();
	off = 112;
	add_ext(&off, Q2_EXT_DATA_FILE, "d.raw", 5);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("bit 2"));
	scimg_put_be64(buf + 72, Q2_INCOMPAT_DATA_FILE);
	CHECK(parse(FILE_SIZE) == 0 && h.data_file && !strcmp(h.data_file, "d.raw"));
	make_v3();
	scimg_put_be64(buf + 72, Q2_INCOMPAT_DATA_FILE);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("no external data file name"));
	make_v3();
	scimg_put_be64(buf + 88, Q2_AUTOCLEAR_DATA_FILE_RAW);
	CHECK(parse(FILE_SIZE) == -EINVAL && err_has("autoclear_features"));

	scimg_int_qcow2_header_free(&h);
	scimg_ctx_free(ctx);
	UNIT_DONE();
}
