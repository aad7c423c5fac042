/* test-ami-manifest.c - the AMI manifest parser, and name resolution inside
 * remote (URL) sources. */
#include <string.h>

#include "scimg-int.h"
#include "formats/ami-int.h"
#include "unit.h"

#define H40 "0123456789abcdef0123456789abcdef01234567"
#define GOOD \
	"<?xml version='1.0'?><manifest><version>2007-10-10</version>" \
	"<bundler><name>ec2-ami-tools</name><version>1.5</version><release>1</release></bundler>" \
	"<machine_configuration><architecture>x86_64</architecture><block_device_mapping>" \
	"<mapping><virtual>ami</virtual><device>sda1</device></mapping>" \
	"<mapping><virtual>root</virtual><device>/dev/sda1</device></mapping>" \
	"</block_device_mapping><kernel_id>aki-1</kernel_id></machine_configuration>" \
	"<image><name>img</name><user>1234</user><type>machine</type>" \
	"<digest algorithm='SHA1'>" H40 "</digest><size>1048576</size><bundled_size>1000</bundled_size>" \
	"<ec2_encrypted_key algorithm='AES-128-CBC'>abcd</ec2_encrypted_key>" \
	"<user_encrypted_key algorithm='AES-128-CBC'>ABCD</user_encrypted_key>" \
	"<ec2_encrypted_iv>00ff</ec2_encrypted_iv><user_encrypted_iv>ff00</user_encrypted_iv>" \
	"<parts count='2'><part index='1'><filename>img.part.1</filename><digest algorithm='SHA1'>" H40 "</digest></part>" \
	"<part index='0'><filename>img.part.0</filename><digest algorithm='SHA1'>" H40 "</digest></part></parts>" \
	"</image><signature>0102</signature></manifest>"

static int parse(struct scimg_ctx *ctx, const char *text, struct ami_manifest *m)
{
	char *raw = strdup(text);
	memset(m, 0, sizeof(*m));
	return scimg_int_ami_manifest_parse(ctx, "m.xml", raw, strlen(text), m);
}

/* GOOD with the first FROM replaced by TO; parse must fail naming WANT. */
static void bad(struct scimg_ctx *ctx, const char *from, const char *to, const char *want)
{
	char buf[8192];
	const char *p = strstr(GOOD, from);
	struct ami_manifest m;
	int ret;

	if (!p) {
		CHECK(!"pattern not in GOOD");
		return;
	}
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - GOOD), GOOD, to, p + strlen(from));
	ret = parse(ctx, buf, &m);
	CHECK(ret < 0);
	CHECK(strstr(scimg_ctx_errmsg(ctx), want) != NULL);
	if (ret >= 0 || !strstr(scimg_ctx_errmsg(ctx), want))
		fprintf(stderr, "  replacing '%s' by '%s': got '%s', expected '%s'\n", from, to,
			scimg_ctx_errmsg(ctx), want);
	scimg_int_ami_manifest_free(&m);
}

static void resolve(struct scimg_ctx *ctx, const char *dir, const char *name,
		    const char *want)
{
	char *out = NULL;
	int ret = scimg_int_url_resolve(ctx, dir, name, &out);

	CHECK(ret == 0 && out && strcmp(out, want) == 0);
	if (ret || !out || strcmp(out, want))
		fprintf(stderr, "  resolve '%s' in '%s': got '%s'\n", name, dir, out ? out : "(error)");
	free(out);
}

static void origin(struct scimg_ctx *ctx, const char *url, const char *want)
{
	char *out = NULL;
	int ret = scimg_int_url_origin(ctx, url, &out);

	CHECK(ret == 0 && out && strcmp(out, want) == 0);
	if (ret || !out || strcmp(out, want))
		fprintf(stderr, "  origin of '%s': got '%s'\n", url, out ? out : "(error)");
	free(out);
}

int main(void)
{
	struct scimg_ctx *ctx = scimg_ctx_new();
	struct ami_manifest m;

	CHECK(parse(ctx, GOOD, &m) == 0);
	CHECK(m.version == AMI_V20071010);
	CHECK(m.size == 1048576 && m.bundled_size == 1000);
	CHECK(m.nparts == 2 && strcmp(m.parts[0].filename, "img.part.0") == 0);
	CHECK(m.user_key_len == 2 && m.user_key[0] == 0xab);
	CHECK(m.n_bdm == 2 && strcmp(m.bdm[1].device, "/dev/sda1") == 0);
	CHECK(strcmp(m.kernel_id, "aki-1") == 0);
	CHECK(m.signature_len == 2);
	CHECK(m.signed_mc && strncmp(m.signed_mc, "<machine_configuration>", 23) == 0);
	CHECK(m.signed_image_len > 0 && strncmp(m.signed_image + m.signed_image_len - 8, "</image>", 8) == 0);
	scimg_int_ami_manifest_free(&m);

	bad(ctx, "<version>2007-10-10", "<version>2099-01-01", "<version> is '2099-01-01'");
	bad(ctx, "<size>1048576</size>", "<size>12x</size>", "<image>/<size> is '12x'");
	bad(ctx, "<size>1048576</size>", "", "no <image>/<size>");
	bad(ctx, "<size>1048576</size>", "<size>1</size><size>2</size>", "more than one <image>/<size>");
	bad(ctx, "<user>1234</user>", "<user><b>x</b></user>", "<image>/<user> holds markup");
	bad(ctx, "count='2'", "count='3'", "count is 3 but it lists 2");
	bad(ctx, "count='2'", "count='0'", "count is '0'");
	bad(ctx, "index='1'", "index='0'", "two <part index='0'>");
	bad(ctx, "index='1'", "index='7'", "index is '7'");
	bad(ctx, "img.part.1", "../img.part.1", "<part index='1'>/<filename> '../img.part.1' points outside");
	bad(ctx, "img.part.0", "/etc/passwd", "points outside");
	bad(ctx, "<digest algorithm='SHA1'>" H40 "</digest><size>", "<digest algorithm='MD5'>" H40 "</digest><size>",
	    "<image>/<digest> algorithm is 'MD5'");
	bad(ctx, H40 "</digest><size>", "abc</digest><size>", "<image>/<digest> is 'abc', expected 40 hex digits");
	bad(ctx, ">ABCD<", ">ABC<", "<image>/<user_encrypted_key> is not an even number");
	bad(ctx, "<signature>0102</signature>", "", "no <signature>");
	bad(ctx, "<manifest>", "<!DOCTYPE manifest [<!ENTITY e \"x\">]><manifest>", "<!DOCTYPE>");
	bad(ctx, "<manifest>", "<other>", "not well-formed");
	bad(ctx, "<user>1234", "<user>&e;", "not well-formed");

	/* names inside a remote image stay remote */
	resolve(ctx, "http://h/a/b", "img.part.0", "http://h/a/b/img.part.0");
	resolve(ctx, "http://h/a/b", "x y#?.raw", "http://h/a/b/x%20y%23%3F.raw");
	resolve(ctx, "http://h/a/b", "/etc/passwd", "http://h/etc/passwd");
	resolve(ctx, "http://h", "/etc/passwd", "http://h/etc/passwd");
	resolve(ctx, "http://h/a/b", "../x", "http://h/a/x");
	resolve(ctx, "http://h/a/b", "//evil/x", "http://h/evil/x");
	origin(ctx, "HTTP://H/a/b", "http://h:80");
	origin(ctx, "https://o:8443/x", "https://o:8443");

	scimg_ctx_free(ctx);
	UNIT_DONE();
}
