/* test-grub.c - the default entry of grub.cfg texts as update-grub writes
 * them (tabs, functions, submenus, set default in an if) and by hand. */
#include <stdlib.h>
#include <string.h>

#include "check/check-int.h"
#include "unit.h"

static const char debian[] =
	"### BEGIN /etc/grub.d/00_header ###\n"
	"if [ -s $prefix/grubenv ]; then\n"
	"  load_env\n"
	"fi\n"
	"if [ \"${next_entry}\" ] ; then\n"
	"   set default=\"${next_entry}\"\n"
	"   set next_entry=\n"
	"else\n"
	"   set default=\"0\"\n"
	"fi\n"
	"function load_video {\n"
	"  if [ x$feature_all_video_module = xy ]; then\n"
	"    insmod all_video\n"
	"  fi\n"
	"}\n"
	"menuentry 'Debian GNU/Linux' --class debian --class gnu-linux $menuentry_id_option 'gnulinux-simple-5c1a' {\n"
	"\tload_video\n"
	"\tif [ x$grub_platform = xxen ]; then insmod xzio; insmod lzopio; fi\n"
	"\tsearch --no-floppy --fs-uuid --set=root 5c1a6e00-0b00-4d00-9a00-0000000000a1\n"
	"\techo\t'Loading Linux 6.1.0-26-cloud-amd64 ...'\n"
	"\tlinux\t/boot/vmlinuz-6.1.0-26-cloud-amd64 root=UUID=5c1a6e00 ro  console=tty0 console=hvc0\n"
	"\techo\t'Loading initial ramdisk ...'\n"
	"\tinitrd\t/boot/initrd.img-6.1.0-26-cloud-amd64\n"
	"}\n"
	"submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'x' {\n"
	"\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-26-cloud-amd64' {\n"
	"\t\tlinux\t/boot/vmlinuz-old root=/dev/sda1\n"
	"\t}\n"
	"}\n";

static const char second[] =
	"set default=1\n"
	"menuentry 'a' {\n  linux /vmlinuz-a root=/dev/sda1\n  initrd /initrd-a\n}\n"
	"menuentry \"b\" {\n  linux16 /vmlinuz-b root=LABEL=root\n}\n";

int main(void)
{
	char *l = NULL, *a = NULL, *i = NULL;
	int l16 = -1;

	CHECK(scimg_int_grub_default(debian, &l, &a, &i, &l16) == 2);
	CHECK(l && !strcmp(l, "/boot/vmlinuz-6.1.0-26-cloud-amd64"));
	CHECK(a && strstr(a, "root=UUID=5c1a6e00") && strstr(a, "console=hvc0"));
	CHECK(i && !strcmp(i, "/boot/initrd.img-6.1.0-26-cloud-amd64"));
	CHECK(l16 == 0);
	free(l); free(a); free(i);

	CHECK(scimg_int_grub_default(second, &l, &a, &i, &l16) == 2);
	CHECK(l && !strcmp(l, "/vmlinuz-b"));
	CHECK(a && !strcmp(a, "root=LABEL=root"));
	CHECK(i == NULL);
	CHECK(l16 == 1);
	free(l); free(a); free(i);

	CHECK(scimg_int_grub_default("# nothing\n", &l, &a, &i, &l16) == 0);
	CHECK(l == NULL);
	CHECK(scimg_int_grub_default("menuentry x {\n", &l, &a, &i, &l16) == 1);
	CHECK(l == NULL);
	/* a direct Xen PV boot's command line (boot-test --xen=direct) */
	{
		char out[1001], why[200];

		CHECK(scimg_int_direct_cmdline("root=UUID=5c1a ro  console=tty0 console=ttyS0,115200n8 quiet",
					       out, sizeof(out), why, sizeof(why)) == 0);
		CHECK(!strcmp(out, "root=UUID=5c1a ro quiet console=hvc0"));
		CHECK(scimg_int_direct_cmdline(NULL, out, sizeof(out), why, sizeof(why)) == 0);
		CHECK(!strcmp(out, "console=hvc0"));
		CHECK(scimg_int_direct_cmdline("\troot=/dev/xvda1\tro quiet splash $vt_handoff", out,
					       sizeof(out), why, sizeof(why)) == 0);
		CHECK(!strcmp(out, "root=/dev/xvda1 ro quiet splash console=hvc0"));
		/* nothing that could end xl's string or the line */
		CHECK(scimg_int_direct_cmdline("root=UUID=x\" extra=\"evil", out, sizeof(out), why,
					       sizeof(why)) == -1 && strstr(why, "0x22"));
		CHECK(scimg_int_direct_cmdline("root=x a\\b", out, sizeof(out), why, sizeof(why)) == -1);
		CHECK(scimg_int_direct_cmdline("root=x\nbootloader=evil", out, sizeof(out), why,
					       sizeof(why)) == -1);
		CHECK(scimg_int_direct_cmdline("root=x \x80", out, sizeof(out), why, sizeof(why)) == -1);
		/* bounded: a line that with console=hvc0 does not fit */
		CHECK(scimg_int_direct_cmdline("root=x ro", out, 20, why, sizeof(why)) == -1 &&
		      strstr(why, "longer"));
		CHECK(scimg_int_direct_cmdline("root=x ro", out, 23, why, sizeof(why)) == 0 &&
		      !strcmp(out, "root=x ro console=hvc0"));
		{
			char *big = malloc(3000);
			memset(big, 'a', 2999);
			big[2999] = '\0';
			CHECK(scimg_int_direct_cmdline(big, out, sizeof(out), why, sizeof(why)) == -1);
			free(big);
		}
	}
	UNIT_DONE();
}
